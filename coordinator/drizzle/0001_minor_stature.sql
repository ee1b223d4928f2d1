ALTER TABLE `experiments` ADD `lines_delta` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `measurements` ADD `kind` text DEFAULT 'baseline' NOT NULL;--> statement-breakpoint
ALTER TABLE `measurements` ADD `training_seconds` real DEFAULT 0 NOT NULL;