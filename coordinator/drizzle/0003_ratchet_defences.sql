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
ALTER TABLE `contributors` ADD `suspect_cleared_at` integer;--> statement-breakpoint
ALTER TABLE `experiments` ADD `reason` text;--> statement-breakpoint
CREATE INDEX `experiments_reason` ON `experiments` (`campaign`,`reason`,`contributor_id`);--> statement-breakpoint
ALTER TABLE `hypotheses` ADD `contributor_id` text;--> statement-breakpoint
CREATE INDEX `hypotheses_contributor` ON `hypotheses` (`contributor_id`,`status`);--> statement-breakpoint
ALTER TABLE `work_units` ADD `excluded_contributors` text;--> statement-breakpoint
ALTER TABLE `work_units` ADD `reserved_for` text;--> statement-breakpoint
ALTER TABLE `work_units` ADD `reserved_until` integer;