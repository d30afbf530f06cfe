package journal

import (
	"encoding/json"
	"time"
)

// Marks the loop makes on every query, around its call of the black box
// (the guard included: rate-limit waits fall between them); the black box
// adds its own (insitu.MarkWritten and the rest) in between.
const (
	MarkStart = "start"
	MarkEnd   = "end"
)

// storedMark is a Mark as the marks column holds it: a JSON array of
// {"part", "event", "t"} with t in unix nanoseconds, which SQLite's JSON
// functions and any JSON reader take as it is.
type storedMark struct {
	Part  string `json:"part,omitempty"`
	Event string `json:"event"`
	T     int64  `json:"t"`
}

func encodeMarks(ms []Mark) string {
	s := make([]storedMark, len(ms))
	for i, m := range ms {
		s[i] = storedMark{Part: m.Part, Event: m.Event, T: m.At.UnixNano()}
	}
	b, _ := json.Marshal(s) // strings and integers: it cannot fail
	return string(b)
}

func decodeMarks(text string) ([]Mark, error) {
	var s []storedMark
	if err := json.Unmarshal([]byte(text), &s); err != nil {
		return nil, err
	}
	ms := make([]Mark, len(s))
	for i, m := range s {
		ms[i] = Mark{Part: m.Part, Event: m.Event, At: time.Unix(0, m.T)}
	}
	return ms, nil
}
