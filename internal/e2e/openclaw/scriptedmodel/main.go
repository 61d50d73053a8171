// Command scriptedmodel serves the end-to-end test's scripted model
// (internal/e2e/openclaw/fakemodel) on loopback, for the guide in
// docs/openclaw.md: an OpenAI-compatible upstream whose answers are a
// script of tool calls, so that an OpenClaw agent can be driven through
// clawea without a language model. It stops on SIGINT or SIGTERM.
//
//	go run ./internal/e2e/openclaw/scriptedmodel --listen 127.0.0.1:18430 --script script.json
//
// The script is a JSON array of steps: {"tool": NAME, "args": {...}} or
// {"text": "..."}; the n-th answer of a conversation is step n, where n is
// the number of tool results the request carries.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/clawea/clawea/internal/e2e/openclaw/fakemodel"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18430", "address to listen on (loopback)")
	script := flag.String("script", "", "the script: a JSON array of steps")
	flag.Parse()
	if !strings.HasPrefix(*listen, "127.0.0.1:") && !strings.HasPrefix(*listen, "localhost:") {
		log.Fatal("--listen must be on 127.0.0.1")
	}
	b, err := os.ReadFile(*script)
	if err != nil {
		log.Fatal(err)
	}
	m := &fakemodel.Model{Logf: func(f string, a ...any) { log.Printf(f, a...) }}
	if err := json.Unmarshal(b, &m.Script); err != nil {
		log.Fatalf("%s: %v", *script, err)
	}
	url, err := m.Start(*listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("scripted model (%d steps) serving %s\n", len(m.Script), url)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	m.Close()
}
