package service_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-lb/herald/controller/allocator"
	"github.com/herald-lb/herald/controller/service"
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
			ips, err := service.ParseRequestedIPs(tc.lbIP, tc.anno)
			switch {
			case tc.errMsg == "" && err != nil:
				t.Fatalf("ParseRequestedIPs: %v", err)
			case tc.errMsg != "" && (err == nil || !strings.Contains(err.Error(), tc.errMsg)):
				t.Fatalf("ParseRequestedIPs error = %v, want one containing %q", err, tc.errMsg)
			case err != nil && !errors.Is(err, allocator.ErrInvalidRequest):
				t.Fatalf("ParseRequestedIPs error %v does not wrap allocator.ErrInvalidRequest", err)
			}
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

func FuzzParseRequestedIPs(f *testing.F) {
	f.Add("192.0.2.7", "")
	f.Add("", "192.0.2.7,2001:db8::1")
	f.Add("", " ,fe80::1%x")
	f.Fuzz(func(t *testing.T, lbIP, anno string) {
		ips, err := service.ParseRequestedIPs(lbIP, anno)
		if err != nil {
			if !errors.Is(err, allocator.ErrInvalidRequest) {
				t.Fatalf("error %v does not wrap ErrInvalidRequest", err)
			}
			return
		}
		if len(ips) > 2 || (len(ips) == 2 && allocator.FamilyOf(ips[0]) == allocator.FamilyOf(ips[1])) {
			t.Fatalf("%v: more than one address per family", ips)
		}
		a, err := allocator.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		svc := allocator.Service{Key: "ns/a", RequestedIPs: ips, FamilyPolicy: allocator.PreferDualStack}
		if _, err := a.Assign(&svc); errors.Is(err, allocator.ErrInvalidRequest) {
			t.Fatalf("parsed addresses %v rejected: %v", ips, err)
		}
	})
}

// TestAllocationError: the allocator's errors speak of the Service's pool and sharing key; the
// controller's message names the annotation each comes from, and errors.Is still sees the
// allocator's sentinel.
func TestAllocationError(t *testing.T) {
	pools := []allocator.Pool{{Name: "a", AutoAssign: true, Ranges: []allocator.Range{{First: netip.MustParseAddr("192.0.2.1"), Last: netip.MustParseAddr("192.0.2.1")}}},
		{Name: "manual", Ranges: []allocator.Range{{First: netip.MustParseAddr("198.51.100.1"), Last: netip.MustParseAddr("198.51.100.1")}}}}
	ip := netip.MustParseAddr("192.0.2.1")
	tests := []struct {
		name     string
		first    *allocator.Service // assigned first
		svc      allocator.Service
		sentinel error
		want     []string
	}{
		{
			name:     "missing pool",
			svc:      allocator.Service{Key: "ns/a", Pool: "nope"},
			sentinel: allocator.ErrNoPool,
			want:     []string{`the Service's pool "nope" does not exist`, "annotation herald.dev/address-pool"},
		},
		{
			name:     "not shared",
			first:    &allocator.Service{Key: "ns/first", SharingKey: "k1"},
			svc:      allocator.Service{Key: "ns/b", RequestedIPs: []netip.Addr{ip}},
			sentinel: allocator.ErrInUse,
			want:     []string{`set the Service's sharing key to "k1" to share it`, "annotation herald.dev/allow-shared-ip"},
		},
		{
			name:     "pool not allowed",
			svc:      allocator.Service{Key: "ns/c", Pool: "manual", RequestedIPs: []netip.Addr{ip}},
			sentinel: allocator.ErrPoolNotAllowed,
			want:     []string{`whose pool is "manual"`, "annotation herald.dev/address-pool"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := allocator.New(pools)
			if err != nil {
				t.Fatal(err)
			}
			if tc.first != nil {
				if _, err := a.Assign(tc.first); err != nil {
					t.Fatal(err)
				}
			}
			_, aerr := a.Assign(&tc.svc)
			if aerr == nil {
				t.Fatal("Assign succeeded")
			}
			if strings.Contains(aerr.Error(), "herald.dev/") {
				t.Errorf("the allocator's own error names an annotation: %v", aerr)
			}
			got := service.AllocationError(aerr)
			for _, w := range tc.want {
				if !strings.Contains(got.Error(), w) {
					t.Errorf("AllocationError = %q, want it to contain %q", got, w)
				}
			}
			if !errors.Is(got, tc.sentinel) {
				t.Errorf("AllocationError = %v, does not wrap %v", got, tc.sentinel)
			}
		})
	}
	plain := errors.New("something else")
	if got := service.AllocationError(plain); got != plain { //nolint:errorlint // the very same error value, not one wrapping it
		t.Errorf("AllocationError of an error about no field = %v, want it unchanged", got)
	}
}
