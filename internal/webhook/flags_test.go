package webhook

import (
	"flag"
	"io"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPolicyFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    Policy
		wantErr string
	}{
		{name: "defaults", want: Policy{}},
		{
			name: "all set",
			args: []string{"--callback-allowed-cidrs", " 10.0.0.0/8,127.0.0.1 ", "--callback-allowed-hosts=Receiver.Default.svc", "--callback-any-port"},
			want: Policy{AllowedCIDRs: prefixes("10.0.0.0/8", "127.0.0.1/32"), AllowedHosts: []string{"receiver.default.svc"}, AnyPort: true},
		},
		{name: "bad CIDR", args: []string{"--callback-allowed-cidrs=10.0.0.0/40"}, wantErr: `webhook: allowed CIDR "10.0.0.0/40"`},
		{name: "bad host", args: []string{"--callback-allowed-hosts=10.0.0.1"}, wantErr: `webhook: allowed host "10.0.0.1": is an address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			var got Policy
			BindPolicyFlags(fs, &got)
			err := fs.Parse(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("policy mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
