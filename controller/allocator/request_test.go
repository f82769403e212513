package allocator

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseRequestedIPs(t *testing.T) {
	tests := []struct {
		name       string
		lbIP, anno string
		want       []string
		errMsg     string
	}{
		{name: "none"},
		{name: "spec field", lbIP: " 192.0.2.7 ", want: []string{"192.0.2.7"}},
		{name: "annotation, both families", anno: "2001:db8::1, 192.0.2.7", want: []string{"2001:db8::1", "192.0.2.7"}},
		{name: "both set", lbIP: "192.0.2.7", anno: "192.0.2.8", errMsg: `spec.loadBalancerIP ("192.0.2.7") and annotation herald.dev/loadBalancerIPs ("192.0.2.8") are both set: set only the annotation`},
		{name: "two of a family", anno: "192.0.2.7,192.0.2.8", errMsg: "lists two IPv4 addresses, 192.0.2.7 and 192.0.2.8: at most one per family"},
		{name: "three", anno: "192.0.2.7,2001:db8::1,2001:db8::2", errMsg: "two IPv6 addresses"},
		{name: "empty entry", anno: "192.0.2.7,", errMsg: "has an empty entry"},
		{name: "not an address", anno: "192.0.2.0/24", errMsg: `annotation herald.dev/loadBalancerIPs: "192.0.2.0/24" is not an IP address`},
		{name: "spec field list", lbIP: "192.0.2.7,192.0.2.8", errMsg: `spec.loadBalancerIP: "192.0.2.7,192.0.2.8" is not an IP address`},
		{name: "zone", anno: "fe80::1%eth0", errMsg: "has an IPv6 zone"},
		{name: "mapped", anno: "::ffff:192.0.2.7", errMsg: "write it as 192.0.2.7"},
		{name: "unspecified", anno: "0.0.0.0", errMsg: "0.0.0.0 is not a unicast address"},
		{name: "multicast", lbIP: "ff02::1", errMsg: "ff02::1 is not a unicast address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ips, err := ParseRequestedIPs(tc.lbIP, tc.anno)
			checkErr(t, "ParseRequestedIPs", err, errIf(tc.errMsg != "", ErrInvalidRequest), tc.errMsg)
			var got []string
			for _, ip := range ips {
				got = append(got, ip.String())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func errIf(cond bool, err error) error {
	if cond {
		return err
	}
	return nil
}

func FuzzParseRequestedIPs(f *testing.F) {
	f.Add("192.0.2.7", "")
	f.Add("", "192.0.2.7,2001:db8::1")
	f.Add("", " ,fe80::1%x")
	f.Fuzz(func(t *testing.T, lbIP, anno string) {
		ips, err := ParseRequestedIPs(lbIP, anno)
		if err != nil {
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("error %v does not wrap ErrInvalidRequest", err)
			}
			return
		}
		if len(ips) > 2 || (len(ips) == 2 && FamilyOf(ips[0]) == FamilyOf(ips[1])) {
			t.Fatalf("%v: more than one address per family", ips)
		}
		svc := Service{Key: "ns/a", RequestedIPs: ips, FamilyPolicy: PreferDualStack}
		if _, _, err := normalize(&svc); err != nil {
			t.Fatalf("parsed addresses %v rejected: %v", ips, err)
		}
	})
}
