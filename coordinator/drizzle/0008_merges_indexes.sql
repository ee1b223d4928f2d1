CREATE INDEX `merges_campaign` ON `merges` (`campaign`,`created_at`);--> statement-breakpoint
CREATE INDEX `merges_experiment` ON `merges` (`experiment_id`);