CREATE INDEX `experiments_parent` ON `experiments` (`campaign`,`parent_commit`,`created_at`);--> statement-breakpoint
CREATE INDEX `work_units_kind` ON `work_units` (`campaign`,`kind`,`state`);--> statement-breakpoint
CREATE INDEX `work_units_hypothesis` ON `work_units` (`hypothesis_id`,`parent_commit`);--> statement-breakpoint
CREATE INDEX `work_units_target` ON `work_units` (`target_experiment`);