package servicebus

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrInvalidEntity is returned (wrapped with detail) for an entity string
// that is not a valid queue, topic or subscription path.
var ErrInvalidEntity = errors.New("servicebus: invalid entity")

// Entity strings name what a Bus method works on:
//
//   - "orders" or "shop/orders" is a queue (Send, Receive, Peek, settlement,
//     dead-letter methods) or a topic (Send only); Service Bus paths may
//     contain '/' between segments.
//   - "shop/events/subscriptions/audit" is the subscription "audit" of the
//     topic "shop/events": the last "/subscriptions/<name>" (the literal
//     segment is case-insensitive, as in Service Bus) splits topic and
//     subscription. It works on the receive side (Receive, Peek, settlement,
//     dead-letter methods); Send rejects it, since one sends to the topic.
//
// Segments are non-empty, made of ASCII letters, digits, '.', '-' and
// '_', and start and end with a letter or digit (so "." and ".." are
// refused); paths are at most 260 characters, subscription names at most
// 50. Names are case-insensitive: CanonicalEntity gives the lower-case form. Sub-queue suffixes such as
// "/$DeadLetterQueue" are not accepted: use ReceiveDeadLetter and
// PurgeDeadLetter. Because of the "/subscriptions/" rule, a queue cannot be
// named "x/subscriptions/y" through this package.
const (
	maxPathLen         = 260 // queue and topic paths
	maxSubscriptionLen = 50
	subscriptionsWord  = "subscriptions"
)

// entityRef is a parsed entity string.
type entityRef struct {
	Queue        string // queue or topic path, when Subscription is empty
	Topic        string // set with Subscription
	Subscription string
}

// IsSubscription reports whether e names a topic subscription.
func (e entityRef) IsSubscription() bool { return e.Subscription != "" }

// String is the canonical entity string ("queue" or
// "topic/subscriptions/name").
func (e entityRef) String() string {
	if e.IsSubscription() {
		return e.Topic + "/" + subscriptionsWord + "/" + e.Subscription
	}
	return e.Queue
}

// key is a case-folded form for caches: Service Bus entity names are
// case-insensitive.
func (e entityRef) key() string { return lowerASCII(e.String()) }

// parseEntity parses an entity string (see the comment on the constants
// above). It never panics.
func parseEntity(s string) (entityRef, error) {
	if s == "" {
		return entityRef{}, fmt.Errorf("%w: empty name", ErrInvalidEntity)
	}
	if !utf8.ValidString(s) {
		return entityRef{}, fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalidEntity, s)
	}
	segs := strings.Split(s, "/")
	// The last "subscriptions" segment that is followed by exactly one more
	// segment splits topic and subscription.
	if n := len(segs); n >= 3 && strings.EqualFold(segs[n-2], subscriptionsWord) {
		topic := strings.Join(segs[:n-2], "/")
		sub := segs[n-1]
		if err := checkPath(topic, s); err != nil {
			return entityRef{}, err
		}
		if err := checkSegment(sub, s); err != nil {
			return entityRef{}, err
		}
		if len(sub) > maxSubscriptionLen {
			return entityRef{}, fmt.Errorf("%w: subscription name in %q is longer than %d characters", ErrInvalidEntity, s, maxSubscriptionLen)
		}
		return entityRef{Topic: topic, Subscription: sub}, nil
	}
	if err := checkPath(s, s); err != nil {
		return entityRef{}, err
	}
	return entityRef{Queue: s}, nil
}

func checkPath(path, whole string) error {
	if len(path) > maxPathLen {
		return fmt.Errorf("%w: %q is longer than %d characters", ErrInvalidEntity, whole, maxPathLen)
	}
	for _, seg := range strings.Split(path, "/") {
		if err := checkSegment(seg, whole); err != nil {
			return err
		}
	}
	return nil
}

func checkSegment(seg, whole string) error {
	if seg == "" {
		return fmt.Errorf("%w: %q has an empty path segment", ErrInvalidEntity, whole)
	}
	// "." and ".." could be resolved away on the way to the service, and
	// leading or trailing punctuation is refused by Service Bus: each
	// segment starts and ends with a letter or digit.
	if !alnum(seg[0]) || !alnum(seg[len(seg)-1]) {
		return fmt.Errorf("%w: %q: each segment starts and ends with a letter or digit", ErrInvalidEntity, whole)
	}
	for _, r := range seg {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
		case r == '$':
			return fmt.Errorf("%w: %q: sub-queues ($...) are not entities; use ReceiveDeadLetter or PurgeDeadLetter", ErrInvalidEntity, whole)
		default:
			return fmt.Errorf("%w: %q contains %q (allowed: letters, digits, '.', '-', '_' and '/' between segments)", ErrInvalidEntity, whole, r)
		}
	}
	return nil
}

func alnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }
