CREATE TABLE `verify_exchange` (
	`campaign` text NOT NULL,
	`verifier` text NOT NULL,
	`author` text NOT NULL,
	`runs` integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `verify_exchange_pair` ON `verify_exchange` (`campaign`,`verifier`,`author`);--> statement-breakpoint
CREATE INDEX `verify_exchange_author` ON `verify_exchange` (`campaign`,`author`);