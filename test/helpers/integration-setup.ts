// Integration tests talk to a real broker and ClickHouse: give each test room (CI is a 2-core machine).
jest.setTimeout(120_000);
