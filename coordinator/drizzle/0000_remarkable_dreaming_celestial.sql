CREATE TABLE `campaigns` (
	`name` text PRIMARY KEY NOT NULL,
	`branch` text NOT NULL,
	`spec` text NOT NULL,
	`status` text DEFAULT 'active' NOT NULL,
	`best_commit` text NOT NULL,
	`tokenizer_file` text,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL
);
--> statement-breakpoint
CREATE TABLE `contributors` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`email` text,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `contributors_name_unique` ON `contributors` (`name`);--> statement-breakpoint
CREATE TABLE `events` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`campaign` text,
	`type` text NOT NULL,
	`payload` text NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `events_campaign` ON `events` (`campaign`,`id`);--> statement-breakpoint
CREATE TABLE `experiments` (
	`id` text PRIMARY KEY NOT NULL,
	`unit_id` text NOT NULL,
	`campaign` text NOT NULL,
	`kind` text NOT NULL,
	`worker_id` text NOT NULL,
	`contributor_id` text NOT NULL,
	`hardware_class` text NOT NULL,
	`hypothesis_id` text,
	`parent_commit` text NOT NULL,
	`commit` text NOT NULL,
	`description` text NOT NULL,
	`diff` text NOT NULL,
	`source_hash` text NOT NULL,
	`metrics` text,
	`val_bpb` real,
	`status` text NOT NULL,
	`decision` text DEFAULT '' NOT NULL,
	`log_tail` text DEFAULT '' NOT NULL,
	`agent_notes` text DEFAULT '' NOT NULL,
	`timings` text,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	FOREIGN KEY (`campaign`) REFERENCES `campaigns`(`name`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `experiments_unit_id_unique` ON `experiments` (`unit_id`);--> statement-breakpoint
CREATE INDEX `experiments_campaign` ON `experiments` (`campaign`,`created_at`);--> statement-breakpoint
CREATE INDEX `experiments_source` ON `experiments` (`source_hash`,`hardware_class`);--> statement-breakpoint
CREATE TABLE `hypotheses` (
	`id` text PRIMARY KEY NOT NULL,
	`campaign` text NOT NULL,
	`title` text NOT NULL,
	`body` text DEFAULT '' NOT NULL,
	`source` text NOT NULL,
	`author` text,
	`priority` integer DEFAULT 0 NOT NULL,
	`status` text DEFAULT 'open' NOT NULL,
	`dedup_key` text NOT NULL,
	`duplicate_of` text,
	`parent_experiment` text,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	FOREIGN KEY (`campaign`) REFERENCES `campaigns`(`name`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `hypotheses_campaign_status` ON `hypotheses` (`campaign`,`status`);--> statement-breakpoint
CREATE TABLE `measurements` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`campaign` text NOT NULL,
	`commit` text NOT NULL,
	`hardware_class` text NOT NULL,
	`val_bpb` real NOT NULL,
	`experiment_id` text NOT NULL,
	`worker_id` text NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL
);
--> statement-breakpoint
CREATE INDEX `measurements_commit` ON `measurements` (`campaign`,`commit`,`hardware_class`);--> statement-breakpoint
CREATE TABLE `merges` (
	`id` text PRIMARY KEY NOT NULL,
	`campaign` text NOT NULL,
	`experiment_id` text NOT NULL,
	`best_before` text NOT NULL,
	`best_after` text NOT NULL,
	`val_before` real NOT NULL,
	`val_after` real NOT NULL,
	`delta` real NOT NULL,
	`sigma` real,
	`samples` text,
	`verifiers` text,
	`hardware_class` text NOT NULL,
	`reverted` integer DEFAULT false NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL
);
--> statement-breakpoint
CREATE TABLE `tokens` (
	`id` text PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`contributor_id` text,
	`hash` text NOT NULL,
	`label` text NOT NULL,
	`revoked_at` integer,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	FOREIGN KEY (`contributor_id`) REFERENCES `contributors`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `tokens_hash_unique` ON `tokens` (`hash`);--> statement-breakpoint
CREATE TABLE `work_units` (
	`id` text PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`campaign` text NOT NULL,
	`hypothesis_id` text,
	`parent_commit` text NOT NULL,
	`target_commit` text,
	`target_experiment` text,
	`hardware_class` text,
	`excluded_worker` text,
	`worker_id` text,
	`lease_token` text,
	`lease_expires_at` integer,
	`attempts` integer DEFAULT 0 NOT NULL,
	`state` text DEFAULT 'queued' NOT NULL,
	`progress` text,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	`updated_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	FOREIGN KEY (`campaign`) REFERENCES `campaigns`(`name`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `work_units_state` ON `work_units` (`state`,`campaign`);--> statement-breakpoint
CREATE INDEX `work_units_worker` ON `work_units` (`worker_id`,`state`);--> statement-breakpoint
CREATE TABLE `workers` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`contributor_id` text NOT NULL,
	`hardware` text NOT NULL,
	`hardware_class` text NOT NULL,
	`last_seen` integer NOT NULL,
	`banned` integer DEFAULT false NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	FOREIGN KEY (`contributor_id`) REFERENCES `contributors`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `workers_contributor_name` ON `workers` (`contributor_id`,`name`);