DROP TABLE relay;
