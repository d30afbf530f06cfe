package journal

import (
	"encoding/json"
	"time"
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
