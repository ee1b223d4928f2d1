DROP INDEX `work_units_kind`;--> statement-breakpoint
CREATE INDEX `work_units_queue` ON `work_units` (`campaign`,`kind`,`state`,`created_at`,`id`);