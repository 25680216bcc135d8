// Package integration holds cdcsync's end-to-end tests.
//
// The kfake tier (files kfake_*_test.go) always runs: real sarama clients
// over TCP against franz-go's in-process kfake broker, started in the test
// process, with workers running as goroutines or as real `cdcsync run`
// processes. The real-stack tier (Apache Kafka, Kafka Connect with
// Debezium, PostgreSQL) is started by the scripts in this directory.
package integration
