-- Two systems of record in one PostgreSQL server, each in its own
-- database: the ERP (database erp) and the CRM (database crm). Both keep a
-- contacts table for the customers they share, keyed by the same id.
--
-- Runs once, on the first start of the postgres container, as the
-- POSTGRES_USER superuser (docker-entrypoint-initdb.d). The server runs
-- with wal_level=logical (see docker-compose.yml), and Debezium's pgoutput
-- plugin is built into PostgreSQL, so nothing else is installed.
--
-- REPLICA IDENTITY FULL makes PostgreSQL log the whole old row on UPDATE
-- and DELETE, so Debezium's change events carry a complete "before". The
-- authority filter compares before with after to find the fields a change
-- really touched; without the before-image every column of an update looks
-- changed and echoes of sync writes are no longer recognised.

CREATE DATABASE erp;
CREATE DATABASE crm;

\connect erp

CREATE TABLE public.contacts (
    id          bigint PRIMARY KEY,
    first_name  text,
    last_name   text,
    email       text,
    phone       text,
    address     text,
    city        text,
    balance     numeric(12,2) NOT NULL DEFAULT 0,
    updated_at  timestamp(6) NOT NULL DEFAULT now()
);
ALTER TABLE public.contacts REPLICA IDENTITY FULL;

-- A few rows, so the connector's initial snapshot creates the topic
-- erp.public.contacts straight away (until it exists, the cdcsync workers
-- wait for it).
INSERT INTO public.contacts (id, first_name, last_name, email, phone, address, city, balance) VALUES
    (1, 'Ada',    'Lovelace', 'ada@example.com',    '+49 30 1000007', '2 Main Street', 'Lyon',    -37.66),
    (2, 'Grace',  'Hopper',   'grace@example.com',  '+49 30 1000014', '3 Main Street', 'Porto',   -25.32),
    (3, 'Edsger', 'Dijkstra', 'edsger@example.com', '+49 30 1000021', '4 Main Street', 'Utrecht',  12.50);

\connect crm

CREATE TABLE public.contacts (
    id          bigint PRIMARY KEY,
    first_name  text,
    last_name   text,
    email       text,
    phone       text,
    address     text,
    city        text,
    balance     numeric(12,2) NOT NULL DEFAULT 0,
    updated_at  timestamp(6) NOT NULL DEFAULT now()
);
ALTER TABLE public.contacts REPLICA IDENTITY FULL;

INSERT INTO public.contacts (id, first_name, last_name, email, phone, address, city, balance) VALUES
    (1, 'Ada',    'Lovelace', 'ada@example.com',    '+49 30 1000007', '2 Main Street', 'Lyon',    -37.66),
    (2, 'Grace',  'Hopper',   'grace@example.com',  '+49 30 1000014', '3 Main Street', 'Porto',   -25.32),
    (3, 'Edsger', 'Dijkstra', 'edsger@example.com', '+49 30 1000021', '4 Main Street', 'Utrecht',  12.50);
