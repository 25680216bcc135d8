#!/usr/bin/env python3
"""Writes the decode fixtures in testdata/decode from the cases below.

Each case is a Connect schema plus payload for key and value, modelled on
the change events in Debezium's connector documentation (PostgreSQL,
MySQL, SQL Server, MongoDB). Every case is written twice: with the JSON
converter's {schema, payload} envelope (NAME.env.*) and without it
(NAME.bare.*). Files: NAME.topic, NAME.key.json, NAME.value.json (absent =
null record part). Run from this directory; then go test -update.
"""
import base64, json, os

def f(typ, field, optional=True, name=None, version=None, params=None, **kw):
    d = {"type": typ, "optional": optional}
    if name: d["name"] = name
    if version: d["version"] = version
    if params: d["parameters"] = params
    d.update(kw)
    d["field"] = field
    return d

def struct(name, fields, optional=True, field=None, version=None):
    d = {"type": "struct", "fields": fields, "optional": optional, "name": name}
    if version: d["version"] = version
    if field: d["field"] = field
    return d

def dec(field, scale, precision=10):
    return f("bytes", field, name="org.apache.kafka.connect.data.Decimal", version=1,
             params={"scale": str(scale), "connect.decimal.precision": str(precision)})

def b64dec(unscaled):
    n = (unscaled.bit_length() + 8) // 8
    return base64.b64encode(unscaled.to_bytes(n, "big", signed=True)).decode()

SNAP = {"type": "string", "optional": True, "name": "io.debezium.data.Enum", "version": 1,
        "parameters": {"allowed": "true,last,false,incremental"}, "default": "false", "field": "snapshot"}

def common_source(extra):
    return [f("string", "version", False), f("string", "connector", False), f("string", "name", False),
            f("int64", "ts_ms", False), SNAP, f("string", "db", False), f("string", "sequence"),
            f("int64", "ts_us"), f("int64", "ts_ns")] + extra

PG_SOURCE = struct("io.debezium.connector.postgresql.Source", common_source(
    [f("string", "schema", False), f("string", "table", False), f("int64", "txId"),
     f("int64", "lsn"), f("int64", "xmin")]), optional=False, field="source")
MYSQL_SOURCE = struct("io.debezium.connector.mysql.Source", common_source(
    [f("string", "table"), f("int64", "server_id", False), f("string", "gtid"), f("string", "file", False),
     f("int64", "pos", False), f("int32", "row", False), f("int64", "thread"), f("string", "query")]),
    optional=False, field="source")
SQLSERVER_SOURCE = struct("io.debezium.connector.sqlserver.Source", common_source(
    [f("string", "schema", False), f("string", "table", False), f("string", "change_lsn"),
     f("string", "commit_lsn"), f("int64", "event_serial_no")]), optional=False, field="source")
MONGO_SOURCE = struct("io.debezium.connector.mongo.Source", common_source(
    [f("string", "collection", False), f("int32", "ord", False), f("string", "lsid"),
     f("int64", "txnNumber"), f("int64", "wallTime")]), optional=False, field="source")
TX = struct("event.block", [f("string", "id", False), f("int64", "total_order", False),
                            f("int64", "data_collection_order", False)], field="transaction", version=1)

def envelope(name, value_schema, source, extra=None):
    fields = []
    if value_schema is not None:
        fields += [dict(value_schema, field="before"), dict(value_schema, field="after")]
    fields += [source, f("string", "op", False), f("int64", "ts_ms"), f("int64", "ts_us"), f("int64", "ts_ns"), TX]
    if extra:
        fields += extra
    return struct(name, fields, optional=False, version=2 if "postgres" in name or "pg." in name else 1)

cases = {}

def case(name, topic, key_schema, key, value_schema, value):
    cases[name] = (topic, key_schema, key, value_schema, value)

# --- PostgreSQL: customers, the benchmark table -------------------------
CUST_FIELDS = [f("int64", "id", False, default=0), f("string", "first_name", False), f("string", "last_name", False),
               f("string", "email", False), f("string", "phone"), f("string", "city"), f("string", "country"),
               dec("balance", 2, 12),
               f("int64", "updated_at", name="io.debezium.time.MicroTimestamp", version=1)]
CUST = struct("pg.public.customers.Value", CUST_FIELDS)
CUST_KEY = struct("pg.public.customers.Key", [f("int64", "id", False, default=0)], optional=False)
PG_ENV = envelope("pg.public.customers.Envelope", CUST, PG_SOURCE)

def cust(id_, email, balance, city="Lisbon"):
    return {"id": id_, "first_name": "Anne", "last_name": "Kretchmar", "email": email, "phone": "+351 21 555 0100",
            "city": city, "country": "PT", "balance": b64dec(balance), "updated_at": 1718012345678901}

def pg_source(lsn, txid, snapshot="false", ts=1718012345678):
    return {"version": "2.7.0.Final", "connector": "postgresql", "name": "pg", "ts_ms": ts, "snapshot": snapshot,
            "db": "inventory", "sequence": "[\"24023119\",\"%d\"]" % lsn, "ts_us": ts * 1000, "ts_ns": ts * 1000000,
            "schema": "public", "table": "customers", "txId": txid, "lsn": lsn, "xmin": None}

def pg_value(op, before, after, src, tx="null"):
    v = {"before": before, "after": after, "source": src, "op": op, "ts_ms": 1718012345999,
         "ts_us": 1718012345999123, "ts_ns": 1718012345999123456}
    if tx == "null":
        v["transaction"] = None
    elif tx is not None:
        v["transaction"] = tx
    return v

K = {"id": 1004}
case("pg_create", "pg.public.customers", CUST_KEY, K, PG_ENV,
     pg_value("c", None, cust(1004, "annek@noanswer.org", 12345), pg_source(24023128, 555)))
case("pg_update", "pg.public.customers", CUST_KEY, K, PG_ENV,
     pg_value("u", cust(1004, "annek@noanswer.org", 12345), cust(1004, "anne.k@example.com", 12350, "Porto"),
              pg_source(24023152, 556), tx={"id": "556:24023152", "total_order": 1, "data_collection_order": 1}))
case("pg_update_no_tx", "pg.public.customers", CUST_KEY, K, PG_ENV,
     pg_value("u", None, cust(1004, "anne.k@example.com", -250, "Porto"), pg_source(24023160, 557), tx=None))
case("pg_delete", "pg.public.customers", CUST_KEY, K, PG_ENV,
     pg_value("d", cust(1004, "anne.k@example.com", 12350, "Porto"), None, pg_source(24023200, 560)))
case("pg_read", "pg.public.customers", CUST_KEY, K, PG_ENV,
     pg_value("r", None, cust(1004, "annek@noanswer.org", 12345), pg_source(24020000, 500, snapshot="true")))
case("pg_read_resnapshot", "pg.public.customers", CUST_KEY, K, PG_ENV,
     pg_value("r", None, cust(1004, "annek@noanswer.org", 12345), pg_source(99990000, 900, snapshot="last", ts=1718099999000)))
case("pg_truncate", "pg.public.customers", None, None, PG_ENV,
     pg_value("t", None, None, pg_source(24023300, 570)))
MSG_ENV = envelope("io.debezium.connector.postgresql.MessageValue", None, PG_SOURCE,
                   extra=[struct("io.debezium.connector.postgresql.Message",
                                 [f("string", "prefix", False), f("bytes", "content", False)], field="message")])
msg_src = pg_source(24023400, 580)
msg_src.update({"schema": "", "table": ""})
case("pg_message", "pg.message", struct("io.debezium.connector.postgresql.MessageKey", [f("string", "prefix", False)], optional=False),
     {"prefix": "audit"}, MSG_ENV,
     dict(pg_value("m", None, None, msg_src), message={"prefix": "audit", "content": base64.b64encode(b"user 7 logged in").decode()}))

# TOASTed columns: text, bytea and numeric columns Debezium could not read.
TOAST = struct("pg.public.documents.Value", [
    f("int32", "id", False), f("string", "title"), f("string", "body"), f("bytes", "blob"), dec("score", 3),
    f("string", "tags_json", name="io.debezium.data.Json", version=1)])
TOAST_ENV = envelope("pg.public.documents.Envelope", TOAST, PG_SOURCE)
UNAV = "__debezium_unavailable_value"
UNAV_B64 = base64.b64encode(UNAV.encode()).decode()
tsrc = pg_source(24024000, 600); tsrc["table"] = "documents"
case("pg_update_toast", "pg.public.documents",
     struct("pg.public.documents.Key", [f("int32", "id", False)], optional=False), {"id": 7}, TOAST_ENV,
     pg_value("u", {"id": 7, "title": "Draft", "body": UNAV, "blob": UNAV_B64, "score": UNAV_B64, "tags_json": UNAV},
              {"id": 7, "title": "Final", "body": UNAV, "blob": UNAV_B64, "score": UNAV_B64, "tags_json": "[\"a\",\"b\"]"}, tsrc))

# Every logical type.
LOGICAL = struct("pg.public.types.Value", [
    f("int64", "id", False),
    f("int8", "tiny"), f("int16", "small"), f("float", "real_col"), f("double", "dbl"), f("boolean", "flag"),
    dec("price", 2), dec("neg_price", 4),
    struct("io.debezium.data.VariableScaleDecimal", [f("int32", "scale", False), f("bytes", "value", False)], field="var_num"),
    f("string", "num_as_string"), f("double", "num_as_double"),
    f("int32", "birth", name="io.debezium.time.Date", version=1),
    f("int32", "c_date", name="org.apache.kafka.connect.data.Date", version=1),
    f("int32", "opens", name="io.debezium.time.Time", version=1),
    f("int64", "opens_us", name="io.debezium.time.MicroTime", version=1),
    f("int64", "opens_ns", name="io.debezium.time.NanoTime", version=1),
    f("int32", "c_time", name="org.apache.kafka.connect.data.Time", version=1),
    f("int64", "ts", name="io.debezium.time.Timestamp", version=1),
    f("int64", "ts_us_col", name="io.debezium.time.MicroTimestamp", version=1),
    f("int64", "ts_ns_col", name="io.debezium.time.NanoTimestamp", version=1),
    f("int64", "c_ts", name="org.apache.kafka.connect.data.Timestamp", version=1),
    f("string", "zoned", name="io.debezium.time.ZonedTimestamp", version=1),
    f("string", "doc", name="io.debezium.data.Json", version=1),
    f("string", "uid", name="io.debezium.data.Uuid", version=1),
    f("string", "mood", name="io.debezium.data.Enum", version=1, params={"allowed": "sad,ok,happy"}),
    f("bytes", "raw"),
    {"type": "array", "items": {"type": "string", "optional": True}, "optional": True, "field": "labels"},
    {"type": "map", "keys": {"type": "string", "optional": False}, "values": {"type": "int32", "optional": True}, "optional": True, "field": "counts"},
    f("string", "nothing"),
])
LOGICAL_ENV = envelope("pg.public.types.Envelope", LOGICAL, PG_SOURCE)
lsrc = pg_source(24025000, 610); lsrc["table"] = "types"
case("pg_logical_types", "pg.public.types",
     struct("pg.public.types.Key", [f("int64", "id", False)], optional=False), {"id": 9223372036854775807}, LOGICAL_ENV,
     pg_value("c", None, {
         "id": 9223372036854775807, "tiny": -8, "small": 32000, "real_col": 1.5, "dbl": 3.141592653589793, "flag": True,
         "price": b64dec(1999), "neg_price": b64dec(-123456), "var_num": {"scale": 3, "value": b64dec(-1234567)},
         "num_as_string": "12.3400", "num_as_double": 12.34,
         "birth": 19000, "c_date": -1, "opens": 34200000, "opens_us": 34200123456, "opens_ns": 34200123456789,
         "c_time": 86399999, "ts": 1718012345678, "ts_us_col": 1718012345678901, "ts_ns_col": 1718012345678901234,
         "c_ts": -86400000, "zoned": "2024-06-10T09:39:05.678901+02:00", "doc": "{\"a\": [1, 2.50, {\"b\": null}]}",
         "uid": "5F2A7B1C-3D4E-4F60-8A9B-0C1D2E3F4A5B", "mood": "happy", "raw": base64.b64encode(b"\x00\x01\xfe\xff").decode(),
         "labels": ["x", None, "z"], "counts": {"a": 1, "b": None}, "nothing": None}, lsrc))

# --- MySQL ----------------------------------------------------------------
ORD = struct("mysql.inventory.orders.Value", [f("int32", "order_number", False), f("int32", "purchaser", False),
                                               f("int32", "quantity", False), dec("amount", 2, 8),
                                               f("int32", "order_date", False, name="io.debezium.time.Date", version=1)])
ORD_ENV = envelope("mysql.inventory.orders.Envelope", ORD, MYSQL_SOURCE)
ORD_KEY = struct("mysql.inventory.orders.Key", [f("int32", "order_number", False)], optional=False)
def my_source(pos, row, gtid, snapshot="false"):
    return {"version": "2.7.0.Final", "connector": "mysql", "name": "mysql", "ts_ms": 1718012300000, "snapshot": snapshot,
            "db": "inventory", "sequence": None, "ts_us": 1718012300000000, "ts_ns": 1718012300000000000,
            "table": "orders", "server_id": 223344, "gtid": gtid, "file": "mysql-bin.000003", "pos": pos, "row": row,
            "thread": 7, "query": None}
def order(qty, amount):
    return {"order_number": 10001, "purchaser": 1001, "quantity": qty, "amount": b64dec(amount), "order_date": 16816}
MYTX = {"id": "file=mysql-bin.000003,pos=154", "total_order": 2, "data_collection_order": 2}
case("mysql_create", "mysql.inventory.orders", ORD_KEY, {"order_number": 10001}, ORD_ENV,
     pg_value("c", None, order(1, 4999), my_source(154, 0, "c2c9b9c4-27e8-11ef-8b8e-0242ac120002:42"), tx=MYTX))
case("mysql_update", "mysql.inventory.orders", ORD_KEY, {"order_number": 10001}, ORD_ENV,
     pg_value("u", order(1, 4999), order(3, 14997), my_source(484, 1, None)))
case("mysql_delete", "mysql.inventory.orders", ORD_KEY, {"order_number": 10001}, ORD_ENV,
     pg_value("d", order(3, 14997), None, my_source(805, 0, None)))

# --- SQL Server -------------------------------------------------------------
SQ = struct("server1.testDB.dbo.customers.Value", [f("int32", "id", False), f("string", "first_name", False),
                                                   f("string", "email", False)])
SQ_ENV = envelope("server1.testDB.dbo.customers.Envelope", SQ, SQLSERVER_SOURCE)
SQ_KEY = struct("server1.testDB.dbo.customers.Key", [f("int32", "id", False)], optional=False)
def sq_source(change, commit, serial):
    return {"version": "2.7.0.Final", "connector": "sqlserver", "name": "server1", "ts_ms": 1559729995937,
            "snapshot": "false", "db": "testDB", "sequence": None, "ts_us": None, "ts_ns": None, "schema": "dbo",
            "table": "customers", "change_lsn": change, "commit_lsn": commit, "event_serial_no": serial}
case("sqlserver_update", "server1.testDB.dbo.customers", SQ_KEY, {"id": 1005}, SQ_ENV,
     pg_value("u", {"id": 1005, "first_name": "john", "email": "john.doe@example.org"},
              {"id": 1005, "first_name": "John", "email": "john.doe@example.org"},
              sq_source("00000027:00000ac0:0002", "00000027:00000ac0:0007", 2)))
case("sqlserver_create", "server1.testDB.dbo.customers", SQ_KEY, {"id": 1006}, SQ_ENV,
     pg_value("c", None, {"id": 1006, "first_name": "Jane", "email": "jane@example.org"},
              sq_source("00000027:00000758:0003", "00000027:00000758:0005", 1), tx=None))

# --- MongoDB ----------------------------------------------------------------
MONGO_ENV = struct("mongo.inventory.customers.Envelope", [
    f("string", "before", name="io.debezium.data.Json", version=1),
    f("string", "after", name="io.debezium.data.Json", version=1),
    struct("io.debezium.connector.mongodb.changestream.updatedescription",
           [f("array", "removedFields", items={"type": "string", "optional": False}),
            f("string", "updatedFields", name="io.debezium.data.Json", version=1),
            f("array", "truncatedArrays", items={"type": "struct", "fields": [f("string", "field", False), f("int32", "size", False)], "optional": False})],
           field="updateDescription"),
    MONGO_SOURCE, f("string", "op"), f("int64", "ts_ms"), f("int64", "ts_us"), f("int64", "ts_ns"), TX], optional=False)
MONGO_KEY = struct("mongo.inventory.customers.Key", [f("string", "id", False)], optional=False)
def mongo_source(ts, ord_):
    return {"version": "2.7.0.Final", "connector": "mongodb", "name": "mongo", "ts_ms": ts, "snapshot": "false",
            "db": "inventory", "sequence": None, "ts_us": None, "ts_ns": None, "collection": "customers", "ord": ord_,
            "lsid": None, "txnNumber": None, "wallTime": ts + 17}
OID = "{\"$oid\": \"596e275826f08b2730779e1f\"}"
doc1 = "{\"_id\": {\"$oid\": \"596e275826f08b2730779e1f\"}, \"first_name\": \"Anne\", \"last_name\": \"Kretchmar\", \"email\": \"annek@noanswer.org\", \"visits\": {\"$numberLong\": \"1234567890123456789\"}, \"since\": {\"$date\": 1558965508000}}"
doc2 = "{\"_id\": {\"$oid\": \"596e275826f08b2730779e1f\"}, \"first_name\": \"Anne Marie\", \"last_name\": \"Kretchmar\", \"email\": \"annek@noanswer.org\", \"visits\": {\"$numberLong\": \"1234567890123456790\"}, \"since\": {\"$date\": 1558965508000}}"
def mongo_value(op, before, after, src, upd=None, tx="null"):
    v = {"before": before, "after": after, "updateDescription": upd, "source": src, "op": op, "ts_ms": 1558965515240,
         "ts_us": 1558965515240142, "ts_ns": 1558965515240142879}
    v["transaction"] = None if tx == "null" else tx
    return v
case("mongo_create", "mongo.inventory.customers", MONGO_KEY, {"id": OID}, MONGO_ENV,
     mongo_value("c", None, doc1, mongo_source(1558965508000, 1)))
case("mongo_update", "mongo.inventory.customers", MONGO_KEY, {"id": OID}, MONGO_ENV,
     mongo_value("u", doc1, doc2, mongo_source(1558965509000, 2),
                 upd={"removedFields": None, "updatedFields": "{\"first_name\": \"Anne Marie\"}", "truncatedArrays": None},
                 tx={"id": "{\"lsid\": 1, \"txnNumber\": 4}", "total_order": 1, "data_collection_order": 1}))
case("mongo_delete", "mongo.inventory.customers", MONGO_KEY, {"id": OID}, MONGO_ENV,
     mongo_value("d", None, None, mongo_source(1558965510000, 3)))

# --- Tombstones ---------------------------------------------------------------
case("tombstone_pg", "pg.public.customers", CUST_KEY, K, None, None)
case("tombstone_mysql", "mysql.inventory.orders", ORD_KEY, {"order_number": 10001}, None, None)

def write(path, data):
    with open(path, "w") as fh:
        fh.write(data)

def dump(schema, payload, env):
    if env:
        return json.dumps({"schema": schema, "payload": payload}, separators=(",", ":"))
    return json.dumps(payload, separators=(",", ":"))

out = "decode"
os.makedirs(out, exist_ok=True)
for name, (topic, ks, k, vs, v) in sorted(cases.items()):
    for env in (True, False):
        base = os.path.join(out, name + (".env" if env else ".bare"))
        write(base + ".topic", topic)
        if k is not None:
            write(base + ".key.json", dump(ks, k, env))
        if v is not None:
            write(base + ".value.json", dump(vs, v, env))
