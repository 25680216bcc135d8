package cdc

import (
	"errors"
	"fmt"
	"strings"
	"sync"
)

// The kinds of connector ParseTopic knows, as Debezium writes them in
// source.connector.
const (
	ConnectorPostgreSQL = "postgresql"
	ConnectorMySQL      = "mysql"
	ConnectorMariaDB    = "mariadb"
	ConnectorSQLServer  = "sqlserver"
	ConnectorMongoDB    = "mongodb"
	ConnectorOracle     = "oracle"
	ConnectorDb2        = "db2"
)

var (
	// ErrUnknownConnector is returned by ParseTopic for an empty or unknown
	// connector kind. The TopicName is then PostgreSQL's reading.
	ErrUnknownConnector = errors.New("cdc: unknown connector kind")
	// ErrTopicShape is returned by ParseTopic for a topic with fewer parts
	// than its connector writes (a topic renamed by an SMT such as
	// RegexRouter). The TopicName then holds the parts there are, read
	// from the right: the last one is always the table.
	ErrTopicShape = errors.New("cdc: topic does not have the connector's shape")
)

// TopicName is what a Debezium data topic's name says about its table.
// Fields the name does not carry are empty: PostgreSQL's topic has no
// database, MySQL's no schema.
type TopicName struct {
	Prefix   string // topic.prefix, the connector's logical name (source.name); may contain dots
	Database string // MySQL, MariaDB, MongoDB and SQL Server (Debezium 2+) database
	Schema   string // PostgreSQL, SQL Server, Oracle and Db2 schema
	Table    string // table, or MongoDB collection
}

// ParseTopic reads a Debezium data topic name as the connector of the
// given kind (Debezium's source.connector value) writes it:
//
//	postgresql, oracle, db2   prefix.schema.table
//	mysql, mariadb            prefix.database.table
//	mongodb                   prefix.database.collection
//	sqlserver                 prefix.database.schema.table (Debezium 2 and later,
//	                          which always runs in multi-partition mode);
//	                          prefix.schema.table, 3 parts, is Debezium 1's form
//
// The name is read from the right, so a prefix may contain dots
// ("prod.erp.public.contacts" is prefix "prod.erp"); a schema or table
// name with a dot cannot be told apart from it, and is read the same way.
//
// Errors: ErrUnknownConnector for an empty or unknown kind, ErrTopicShape
// for too few parts. With either, the TopicName is still the best
// reading (PostgreSQL's shape; the parts there are, from the right), for
// callers that must go on, such as a tombstone that needs an identity.
func ParseTopic(topic, connector string) (TopicName, error) {
	var fields []*string // the fields after the prefix, in order
	var tn TopicName
	var err error
	switch connector {
	case ConnectorPostgreSQL, ConnectorOracle, ConnectorDb2:
		fields = []*string{&tn.Schema, &tn.Table}
	case ConnectorMySQL, ConnectorMariaDB, ConnectorMongoDB:
		fields = []*string{&tn.Database, &tn.Table}
	case ConnectorSQLServer:
		fields = []*string{&tn.Database, &tn.Schema, &tn.Table}
		if strings.Count(topic, ".") == 2 {
			fields = fields[1:] // Debezium 1: prefix.schema.table
		}
	default:
		fields = []*string{&tn.Schema, &tn.Table}
		err = fmt.Errorf("%w %q: topic %q read as prefix.schema.table", ErrUnknownConnector, connector, topic)
	}
	parts := strings.Split(topic, ".")
	if len(parts) <= len(fields) {
		// Too few parts: no prefix, and fields from the right.
		fields = fields[len(fields)-len(parts):]
		for i, p := range parts {
			*fields[i] = p
		}
		if err == nil {
			err = fmt.Errorf("%w: %q has %d parts, %s writes %d", ErrTopicShape, topic, len(parts), connector, len(fields)+1)
		}
		return tn, err
	}
	n := len(parts) - len(fields)
	tn.Prefix = strings.Join(parts[:n], ".")
	for i, p := range parts[n:] {
		*fields[i] = p
	}
	return tn, err
}

func knownConnector(c string) bool {
	switch c {
	case ConnectorPostgreSQL, ConnectorOracle, ConnectorDb2, ConnectorMySQL, ConnectorMariaDB, ConnectorMongoDB, ConnectorSQLServer:
		return true
	}
	return false
}

// topicKinds remembers, per topic, the connector kind of the records a
// decoder read from it, so a tombstone (which has no source block) is
// read in its topic's shape. It is bounded: past maxTopicKinds topics,
// new topics are not remembered and their tombstones use the fallback.
type topicKinds struct {
	m sync.Map // topic string -> connector string
	n sync.Mutex
	c int
}

const maxTopicKinds = 4096

// learn records topic's connector kind, if it is one ParseTopic knows.
func (k *topicKinds) learn(topic, connector string) {
	if connector == "" {
		return
	}
	if v, ok := k.m.Load(topic); ok && v.(string) == connector {
		return
	}
	if !knownConnector(connector) {
		return
	}
	k.n.Lock()
	defer k.n.Unlock()
	if _, ok := k.m.Load(topic); !ok {
		if k.c >= maxTopicKinds {
			return
		}
		k.c++
	}
	k.m.Store(topic, connector)
}

// kind is topic's connector kind: the declared one, else the one learned
// from the topic's records, else "".
func (k *topicKinds) kind(declared, topic string) string {
	if declared != "" {
		return declared
	}
	if v, ok := k.m.Load(topic); ok {
		return v.(string)
	}
	return ""
}
