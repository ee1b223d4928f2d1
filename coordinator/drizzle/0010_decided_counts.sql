CREATE TABLE `decided_counts` (
	`campaign` text NOT NULL,
	`status` text NOT NULL,
	`n` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `decided_counts_key` ON `decided_counts` (`campaign`,`status`);--> statement-breakpoint
-- Written by hand (drizzle-kit keeps no triggers): the counts as they stand, then kept by every write.
INSERT INTO `decided_counts` (`campaign`, `status`, `n`)
  SELECT `campaign`, `status`, count(*) FROM `experiments`
  WHERE `kind` IN ('explore', 'rebase') AND `status` IN ('kept', 'discarded', 'rejected') AND `val_bpb` IS NOT NULL
  GROUP BY `campaign`, `status`;
--> statement-breakpoint
CREATE TRIGGER `decided_counts_insert` AFTER INSERT ON `experiments`
WHEN NEW.`kind` IN ('explore', 'rebase') AND NEW.`status` IN ('kept', 'discarded', 'rejected') AND NEW.`val_bpb` IS NOT NULL
BEGIN
  INSERT INTO `decided_counts` (`campaign`, `status`, `n`) VALUES (NEW.`campaign`, NEW.`status`, 1)
    ON CONFLICT (`campaign`, `status`) DO UPDATE SET `n` = `n` + 1;
END;
--> statement-breakpoint
CREATE TRIGGER `decided_counts_delete` AFTER DELETE ON `experiments`
WHEN OLD.`kind` IN ('explore', 'rebase') AND OLD.`status` IN ('kept', 'discarded', 'rejected') AND OLD.`val_bpb` IS NOT NULL
BEGIN
  UPDATE `decided_counts` SET `n` = `n` - 1 WHERE `campaign` = OLD.`campaign` AND `status` = OLD.`status`;
END;
--> statement-breakpoint
CREATE TRIGGER `decided_counts_update_old` AFTER UPDATE OF `campaign`, `kind`, `status`, `val_bpb` ON `experiments`
WHEN OLD.`kind` IN ('explore', 'rebase') AND OLD.`status` IN ('kept', 'discarded', 'rejected') AND OLD.`val_bpb` IS NOT NULL
BEGIN
  UPDATE `decided_counts` SET `n` = `n` - 1 WHERE `campaign` = OLD.`campaign` AND `status` = OLD.`status`;
END;
--> statement-breakpoint
CREATE TRIGGER `decided_counts_update_new` AFTER UPDATE OF `campaign`, `kind`, `status`, `val_bpb` ON `experiments`
WHEN NEW.`kind` IN ('explore', 'rebase') AND NEW.`status` IN ('kept', 'discarded', 'rejected') AND NEW.`val_bpb` IS NOT NULL
BEGIN
  INSERT INTO `decided_counts` (`campaign`, `status`, `n`) VALUES (NEW.`campaign`, NEW.`status`, 1)
    ON CONFLICT (`campaign`, `status`) DO UPDATE SET `n` = `n` + 1;
END;
