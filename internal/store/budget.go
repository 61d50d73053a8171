package store

import "encoding/json"

// Budget limits a job's model usage; zero fields are unlimited. The job
// service sets it when the job starts (Job.Budget holds its JSON) and the
// model gateway enforces it against the job's usage counters.
type Budget struct {
	MaxRequests     int64 `json:"max_requests,omitempty"`
	MaxTokensInput  int64 `json:"max_tokens_input,omitempty"`
	MaxTokensOutput int64 `json:"max_tokens_output,omitempty"`
}

// ParseBudget reads a job's stored budget (Job.Budget); unreadable means
// none.
func ParseBudget(raw []byte) Budget {
	var b Budget
	json.Unmarshal(raw, &b)
	return b
}

// Tighten returns the stricter of b and o in each dimension (zero is no
// limit).
func (b Budget) Tighten(o *Budget) Budget {
	if o == nil {
		return b
	}
	min := func(x, y int64) int64 {
		switch {
		case x == 0:
			return y
		case y == 0 || x < y:
			return x
		}
		return y
	}
	return Budget{MaxRequests: min(b.MaxRequests, o.MaxRequests), MaxTokensInput: min(b.MaxTokensInput, o.MaxTokensInput),
		MaxTokensOutput: min(b.MaxTokensOutput, o.MaxTokensOutput)}
}
