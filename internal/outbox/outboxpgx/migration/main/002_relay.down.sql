DROP TABLE {{schema}}.relay;
