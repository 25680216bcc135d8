package schemas

import "github.com/cdcsync/cdcsync/topology"

// Subject names the registry subject of a record value under a naming
// strategy: topic gives "<topic>-value" (Confluent's TopicNameStrategy,
// the default), record the record's full name (RecordNameStrategy), and
// topic-record "<topic>-<full name>" (TopicRecordNameStrategy).
func Subject(s topology.SubjectStrategy, topic, record string) string {
	switch s {
	case topology.SubjectRecord:
		return record
	case topology.SubjectTopicRecord:
		return topic + "-" + record
	}
	return topic + "-value"
}

// KeySubject is the subject of a record key under the topic strategy,
// "<topic>-key".
func KeySubject(topic string) string { return topic + "-key" }
