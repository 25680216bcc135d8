package saga

import (
	"context"
	"sort"

	"github.com/IBM/sarama"
)

// ReadStates reads a saga state topic to its end, read_committed, and
// returns the latest state of every saga it holds (tombstoned ones are
// gone), sorted by start time then ID. Records that are not states are
// counted in invalid. The CLI (cdcsync saga list|show) and the REST API
// read sagas with it; it needs no consumer group and changes nothing.
func ReadStates(ctx context.Context, client sarama.Client, topic string) (states []*State, invalid int, err error) {
	parts, err := client.Partitions(topic)
	if err != nil {
		return nil, 0, err
	}
	byID := map[string]*State{}
	for _, p := range parts {
		_, err := restorePartition(ctx, client, topic, p, func(key, value []byte) {
			id := string(key)
			if len(value) == 0 {
				delete(byID, id)
				return
			}
			st, err := DecodeState(value)
			if err != nil || st.ID != id {
				invalid++
				return
			}
			byID[id] = st
		})
		if err != nil {
			return nil, invalid, err
		}
	}
	states = make([]*State, 0, len(byID))
	for _, st := range byID {
		states = append(states, st)
	}
	sort.Slice(states, func(i, j int) bool {
		if !states[i].Started.Equal(states[j].Started) {
			return states[i].Started.Before(states[j].Started)
		}
		return states[i].ID < states[j].ID
	})
	return states, invalid, nil
}
