-- Reverts 001_outbox.up.sql. The schema and its migration table stay.
DROP FUNCTION IF EXISTS {{schema}}.publish(text, text, text, jsonb, timestamptz, int);
DROP FUNCTION IF EXISTS {{schema}}.publish(text, bytea, bytea, jsonb, timestamptz, int);
DROP TABLE IF EXISTS {{schema}}.dead_letter;
DROP TABLE IF EXISTS {{schema}}.lane;
DROP TABLE IF EXISTS {{schema}}.outbox;
