package servicebus

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/messaging/azservicebus"
	"github.com/Azure/go-amqp"
)

// maxRendered bounds the string form of an application property value of
// a type this package does not map (lists, maps, described types).
const maxRendered = 4096

// maxJSONDepth bounds the nesting followed when rendering an AMQP value body.
const maxJSONDepth = 32

// reservedStringProperties are application properties that Service Bus uses
// for dead-lettering; SDKs read them as strings and the Go SDK panics on any
// other type.
var reservedStringProperties = map[string]struct{}{
	"DeadLetterReason":           {},
	"DeadLetterErrorDescription": {},
}

// toAMQPProperties checks and converts outgoing application properties.
// Allowed values: string, bool, Go integer and float types, json.Number,
// time.Time (sent as an AMQP timestamp) and nil.
func toAMQPProperties(props map[string]any) (map[string]any, error) {
	if len(props) == 0 {
		return nil, nil
	}
	out := make(map[string]any, len(props))
	for k, v := range props {
		if k == "" {
			return nil, fmt.Errorf("servicebus: application property with an empty name")
		}
		if _, reserved := reservedStringProperties[k]; reserved {
			if _, ok := v.(string); !ok {
				return nil, fmt.Errorf("servicebus: application property %q must be a string, not %T (Service Bus clients expect one)", k, v)
			}
		}
		switch v := v.(type) {
		case nil, string, bool, int8, int16, int32, int64, uint8, uint16, uint32, uint64, float32, float64, time.Time:
			out[k] = v
		case int:
			out[k] = int64(v)
		case uint:
			out[k] = uint64(v)
		case json.Number:
			if i, err := v.Int64(); err == nil {
				out[k] = i
			} else if f, err := v.Float64(); err == nil {
				out[k] = f
			} else {
				return nil, fmt.Errorf("servicebus: application property %q: %q is not a number", k, v.String())
			}
		default:
			return nil, fmt.Errorf("servicebus: application property %q has unsupported type %T (want string, number, bool or time)", k, v)
		}
	}
	return out, nil
}

// fromAMQPProperties converts received application properties to the
// documented Message.Properties value types: string, bool, int64 (uint64 when
// too large), float64. Timestamps become RFC 3339 strings, binary values
// base64, UUIDs and symbols strings, non-finite floats the strings "NaN",
// "+Inf" and "-Inf", other types a bounded string rendering. Nil values are
// dropped. The result is always encodable with encoding/json.
func fromAMQPProperties(props map[string]any) map[string]any {
	if len(props) == 0 {
		return nil
	}
	out := make(map[string]any, len(props))
	for k, v := range props {
		if c, ok := scalar(v); ok {
			out[k] = c
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// scalar converts one received AMQP value; ok is false for nil.
func scalar(v any) (any, bool) {
	switch v := v.(type) {
	case nil:
		return nil, false
	case string:
		return v, true
	case bool:
		return v, true
	case int8:
		return int64(v), true
	case int16:
		return int64(v), true
	case int32:
		return int64(v), true
	case int64:
		return v, true
	case int:
		return int64(v), true
	case uint8:
		return int64(v), true
	case uint16:
		return int64(v), true
	case uint32:
		return int64(v), true
	case uint64:
		if v <= math.MaxInt64 {
			return int64(v), true
		}
		return v, true
	case uint:
		return scalar(uint64(v))
	case float32:
		return finite(float64(v)), true
	case float64:
		return finite(v), true
	case amqp.Symbol:
		return string(v), true
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano), true
	case []byte:
		return base64.StdEncoding.EncodeToString(v), true
	case amqp.UUID:
		return v.String(), true
	default:
		s := fmt.Sprint(v)
		if len(s) > maxRendered {
			s = s[:maxRendered]
		}
		return s, true
	}
}

func finite(f float64) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return f
}

// idString renders an AMQP message-id or correlation-id (string, ulong,
// uuid or binary) as a string.
func idString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case uint64:
		return strconv.FormatUint(v, 10)
	case amqp.UUID:
		return v.String()
	case []byte:
		return hex.EncodeToString(v)
	default:
		s := fmt.Sprint(v)
		if len(s) > maxRendered {
			s = s[:maxRendered]
		}
		return s
	}
}

// bodyOf returns a received message's payload: its single data section, the
// concatenation of several data sections, or, for a message sent with an
// AMQP value or sequence body, binary and string values as they are and other
// values as JSON.
func bodyOf(m *azservicebus.ReceivedMessage) []byte {
	if m.Body != nil || m.RawAMQPMessage == nil {
		return m.Body
	}
	b := m.RawAMQPMessage.Body
	switch {
	case len(b.Data) > 0:
		var out []byte
		for _, d := range b.Data {
			out = append(out, d...)
		}
		return out
	case b.Value != nil:
		switch v := b.Value.(type) {
		case []byte:
			return v
		case string:
			return []byte(v)
		}
		return marshalJSON(b.Value)
	case len(b.Sequence) > 0:
		seqs := make([]any, len(b.Sequence))
		for i, s := range b.Sequence {
			seqs[i] = s
		}
		return marshalJSON(seqs)
	}
	return nil
}

func marshalJSON(v any) []byte {
	out, err := json.Marshal(jsonable(v, 0))
	if err != nil {
		return []byte(strconv.Quote(fmt.Sprint(v)))
	}
	return out
}

// jsonable turns a decoded AMQP value into something encoding/json accepts.
func jsonable(v any, depth int) any {
	if depth > maxJSONDepth {
		return "..."
	}
	switch v := v.(type) {
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = jsonable(e, depth+1)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = jsonable(e, depth+1)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			ks, _ := scalar(k)
			out[fmt.Sprint(ks)] = jsonable(e, depth+1)
		}
		return out
	}
	if c, ok := scalar(v); ok {
		return c
	}
	return nil
}
