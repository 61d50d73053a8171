package modelgw

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// TestReadBody: whatever length a body declares, readBody returns its
// bytes up to the limit and one more when it is longer.
func TestReadBody(t *testing.T) {
	const limit = 100
	for _, tc := range []struct {
		body     string
		declared int64
		want     int
	}{
		{"", 0, 0},
		{"hello", 5, 5},
		{"hello", -1, 5},
		{"hello", 3, 5},       // declared too short
		{"hello", 1 << 40, 5}, // declared too long: no huge buffer
		{strings.Repeat("x", limit), limit, limit},
		{strings.Repeat("x", 1000), 1000, limit + 1},
		{strings.Repeat("x", 1000), -1, limit + 1},
		{strings.Repeat("x", 700), 10, limit + 1},
	} {
		for _, r := range []io.Reader{strings.NewReader(tc.body), iotest.OneByteReader(strings.NewReader(tc.body)), iotest.DataErrReader(strings.NewReader(tc.body))} {
			got, err := readBody(r, tc.declared, limit)
			if err != nil || len(got) != tc.want || !bytes.Equal(got, []byte(tc.body[:tc.want])) {
				t.Errorf("body of %d declared %d: got %d bytes, %v; want %d", len(tc.body), tc.declared, len(got), err, tc.want)
			}
		}
	}
	boom := errors.New("boom")
	if _, err := readBody(iotest.ErrReader(boom), 10, limit); !errors.Is(err, boom) {
		t.Errorf("read error: %v", err)
	}
	if got, _ := readBody(strings.NewReader("hello"), 1<<40, 1<<30); cap(got) > 64<<10+1 {
		t.Errorf("a declared length of 1 TiB made a buffer of %d bytes", cap(got))
	}
}
