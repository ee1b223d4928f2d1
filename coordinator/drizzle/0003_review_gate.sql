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
ALTER TABLE `merges` ADD `reviewer` text;--> statement-breakpoint
ALTER TABLE `merges` ADD `review_reason` text;