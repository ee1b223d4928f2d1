CREATE TABLE `campaign_data` (
	`campaign` text PRIMARY KEY NOT NULL,
	`source` text NOT NULL,
	`dir` text NOT NULL,
	`manifest` text NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	FOREIGN KEY (`campaign`) REFERENCES `campaigns`(`name`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `campaign_programs` (
	`campaign` text PRIMARY KEY NOT NULL,
	`version` text NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`campaign`) REFERENCES `campaigns`(`name`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `hardware_classes` (
	`campaign` text NOT NULL,
	`hardware_class` text NOT NULL,
	`approved` integer DEFAULT false NOT NULL,
	`approved_by` text,
	`allow_self_verification` integer DEFAULT false NOT NULL,
	`updated_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `hardware_classes_campaign_class` ON `hardware_classes` (`campaign`,`hardware_class`);--> statement-breakpoint
CREATE TABLE `reviews` (
	`id` text PRIMARY KEY NOT NULL,
	`campaign` text NOT NULL,
	`experiment_id` text NOT NULL,
	`requested` text NOT NULL,
	`mode` text NOT NULL,
	`warning` text,
	`state` text NOT NULL,
	`decision` text NOT NULL,
	`agent_model` text,
	`agent_verdict` text,
	`agent_reason` text,
	`agent_concerns` text,
	`agent_failures` integer DEFAULT 0 NOT NULL,
	`agent_error` text,
	`agent_next_at` integer,
	`agent_at` integer,
	`maintainer_verdict` text,
	`maintainer_reason` text,
	`maintainer_at` integer,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	`decided_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `reviews_experiment_id_unique` ON `reviews` (`experiment_id`);--> statement-breakpoint
CREATE INDEX `reviews_state` ON `reviews` (`state`,`campaign`);--> statement-breakpoint
CREATE TABLE `unit_context` (
	`unit_id` text PRIMARY KEY NOT NULL,
	`campaign` text NOT NULL,
	`parent_commit` text NOT NULL,
	`program_version` text,
	`claim_hash` text,
	`claim_description` text,
	`claim_changes` text,
	`agent` text,
	`claimed_at` integer,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `unit_context_parent` ON `unit_context` (`campaign`,`parent_commit`,`claim_hash`);--> statement-breakpoint
ALTER TABLE `contributors` ADD `suspect_cleared_at` integer;--> statement-breakpoint
ALTER TABLE `experiments` ADD `reason` text;--> statement-breakpoint
CREATE INDEX `experiments_reason` ON `experiments` (`campaign`,`reason`,`contributor_id`);--> statement-breakpoint
ALTER TABLE `hypotheses` ADD `contributor_id` text;--> statement-breakpoint
CREATE INDEX `hypotheses_contributor` ON `hypotheses` (`contributor_id`,`status`);--> statement-breakpoint
ALTER TABLE `merges` ADD `reviewer` text;--> statement-breakpoint
ALTER TABLE `merges` ADD `review_reason` text;--> statement-breakpoint
ALTER TABLE `work_units` ADD `excluded_contributors` text;--> statement-breakpoint
ALTER TABLE `work_units` ADD `reserved_for` text;--> statement-breakpoint
ALTER TABLE `work_units` ADD `reserved_until` integer;