package topology

import "encoding/json"

// PlanJSON is the JSON form of a compiled plan, as the REST API's
// GET /topologies/{name} and `topology describe --output json` give it.
// Options is the list Describe prints, line for line; the other fields
// are the names a client most often needs, typed.
type PlanJSON struct {
	Name          string   `json:"name"`
	File          string   `json:"file,omitempty"`
	Group         string   `json:"group"`
	LedgerTopic   string   `json:"ledger_topic"`
	DLQTopic      string   `json:"dlq_topic"`
	SourceTopics  []string `json:"source_topics,omitempty"`
	SourcePattern string   `json:"source_pattern,omitempty"`
	SinkTopic     string   `json:"sink_topic"`
	Guarantee     string   `json:"guarantee"`
	Options       []Option `json:"options"`
}

// JSON returns the plan's JSON form.
func (p *Plan) JSON() PlanJSON {
	j := PlanJSON{
		Name:          p.Name(),
		File:          p.File(),
		Group:         string(p.Group()),
		LedgerTopic:   string(p.LedgerTopic()),
		DLQTopic:      string(p.DLQTopic()),
		SourcePattern: p.SourcePattern(),
		SinkTopic:     p.SinkTopicTemplate(),
		Guarantee:     p.Guarantee().String(),
		Options:       p.Options(),
	}
	for _, t := range p.SourceTopics() {
		j.SourceTopics = append(j.SourceTopics, string(t))
	}
	return j
}

// MarshalJSON encodes the plan as PlanJSON.
func (p *Plan) MarshalJSON() ([]byte, error) { return json.Marshal(p.JSON()) }
