package config

import (
	"strings"
	"testing"

	"github.com/clawea/clawea/internal/connector/servicebus"
	"github.com/clawea/clawea/internal/toolgw"
)

// A namespace-level SAS connection string is refused at config load unless
// allow_namespace_sas is set for that namespace; an entity-scoped one is
// accepted; an allowed namespace-level one is flagged by the gateway.
func TestNamespaceSASRefusedUnlessAllowed(t *testing.T) {
	const ep = "Endpoint=sb://sb-orders.servicebus.windows.net/;"
	t.Setenv("CLAWEA_TEST_SB_ROOT", ep+"SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=c2VjcmV0LWtleS12YWx1ZQ==")
	t.Setenv("CLAWEA_TEST_SB_ENTITY", ep+"SharedAccessKeyName=send-orders;SharedAccessKey=c2VjcmV0LWtleS12YWx1ZQ==;EntityPath=orders")
	apply := func(doc string) (toolgw.Options, error) {
		f, err := Parse([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		var o toolgw.Options
		_, err = f.ToolGateway.Apply(&o)
		return o, err
	}
	_, err := apply(`{"tool_gateway": {"servicebus": [{"namespace": "sb-orders", "connection_string_env": "CLAWEA_TEST_SB_ROOT"}]}}`)
	if err == nil || !strings.Contains(err.Error(), "NAMESPACE_SAS_REFUSED") || !strings.Contains(err.Error(), "RootManageSharedAccessKey") {
		t.Fatalf("namespace-level SAS: %v", err)
	}
	if strings.Contains(err.Error(), "c2VjcmV0") {
		t.Fatal("the error quotes the key")
	}
	o, err := apply(`{"tool_gateway": {"servicebus": [{"namespace": "sb-orders", "connection_string_env": "CLAWEA_TEST_SB_ENTITY"}]}}`)
	if err != nil || len(o.Buses) != 1 || servicebus.HasNamespaceSAS(o.Buses[0]) {
		t.Fatalf("entity SAS: %v", err)
	}
	o.Buses[0].Close()
	o, err = apply(`{"tool_gateway": {"servicebus": [{"namespace": "sb-orders", "connection_string_env": "CLAWEA_TEST_SB_ROOT", "allow_namespace_sas": true}]}}`)
	if err != nil || len(o.Buses) != 1 || !servicebus.HasNamespaceSAS(o.Buses[0]) {
		t.Fatalf("allowed namespace SAS: %v", err)
	}
	tools, err := servicebus.NewTools(o.Buses)
	if err != nil {
		t.Fatal(err)
	}
	if ns := tools.NamespaceSAS(); len(ns) != 1 || ns[0] != "sb-orders" {
		t.Fatalf("not flagged: %v", ns)
	}
	o.Buses[0].Close()
}
