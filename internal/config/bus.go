package config

import (
	"errors"

	"github.com/clawea/clawea/internal/connector/servicebus"
)

// buildBus connects a real Service Bus namespace.
func buildBus(ns Namespace) (servicebus.Bus, error) {
	return nil, errors.New("real Service Bus namespaces are not wired yet")
}
