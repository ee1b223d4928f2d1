CREATE TABLE `staged_objects` (
	`id` text PRIMARY KEY NOT NULL,
	`type` text NOT NULL,
	`body` blob NOT NULL
);
