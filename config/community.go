package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/herald-lb/herald/api/v1beta1"
)

const communityHint = "use a standard community a:b with 16-bit parts such as 65000:100, or a large one large:a:b:c with 32-bit parts such as large:65000:1:2"

// ParseCommunity parses a literal BGP community: standard "a:b" (RFC 1997, each part 0-65535)
// or large "large:a:b:c" (RFC 8092, each part 0-4294967295), parts in decimal. Aliases are not
// resolved here. The error is a *ParseError that matches ErrInvalid.
func ParseCommunity(s string) (Community, error) {
	parts := strings.Split(s, ":")
	switch {
	case len(parts) == 2:
		hi, err1 := parseDecimal(parts[0], 16)
		lo, err2 := parseDecimal(parts[1], 16)
		if err1 != nil || err2 != nil {
			return Community{}, &ParseError{Input: s, Reason: "not a valid standard community; " + communityHint}
		}
		return Community{Value: hi<<16 | lo}, nil
	case len(parts) == 4 && parts[0] == "large":
		var c Community
		c.Large = true
		for i, p := range parts[1:] {
			v, err := parseDecimal(p, 32)
			if err != nil {
				return Community{}, &ParseError{Input: s, Reason: "not a valid large community; " + communityHint}
			}
			c.LargeValue[i] = v
		}
		return c, nil
	}
	return Community{}, &ParseError{Input: s, Reason: "not a valid community; " + communityHint}
}

// parseDecimal parses a non-empty string of ASCII digits that fits in bits bits.
func parseDecimal(s string, bits int) (uint32, error) {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, strconv.ErrSyntax
		}
	}
	v, err := strconv.ParseUint(s, 10, bits)
	return uint32(v), err
}

// String formats the community as ParseCommunity reads it: "65000:100" or "large:65000:1:2".
func (c Community) String() string {
	if c.Large {
		return "large:" + strconv.FormatUint(uint64(c.LargeValue[0]), 10) + ":" +
			strconv.FormatUint(uint64(c.LargeValue[1]), 10) + ":" +
			strconv.FormatUint(uint64(c.LargeValue[2]), 10)
	}
	return strconv.FormatUint(uint64(c.Value>>16), 10) + ":" + strconv.FormatUint(uint64(c.Value&0xffff), 10)
}

// alias is a community alias and the Community object that declares it.
type alias struct {
	value Community
	owner *v1beta1.Community
	index int
}

// parseCommunities collects the aliases of every Community object. Each alias entry stands
// alone: a bad one is left out, and one that gives an alias another value than an earlier-ranked
// Community object (older creationTimestamp, then name) is an error of the later one only.
func (p *parser) parseCommunities(objs []*v1beta1.Community) {
	p.aliases = map[string]alias{}
	ranked := slices.Clone(objs)
	slices.SortFunc(ranked, func(a, b *v1beta1.Community) int {
		return comparePrecedence(precedence{created: a.CreationTimestamp.Time, name: a.Name, ns: a.Namespace},
			precedence{created: b.CreationTimestamp.Time, name: b.Name, ns: b.Namespace})
	})
	for _, o := range ranked {
		r := p.reporter(KindCommunity, o)
		for i, a := range o.Spec.Communities {
			field := fmt.Sprintf("spec.communities[%d]", i)
			if !isAliasName(a.Name) {
				r.errorf(field+".name", a.Name, "not a valid alias name; use 1 to 63 lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, such as no-export-upstream")
				continue
			}
			c, err := ParseCommunity(a.Value)
			if err != nil {
				r.errorf(field+".value", a.Value, "%s", reason(err))
				continue
			}
			prev, dup := p.aliases[a.Name]
			if !dup {
				p.aliases[a.Name] = alias{value: c, owner: o, index: i}
				continue
			}
			if prev.value == c {
				continue
			}
			r.errorf(field+".name", a.Name, "Community %s spec.communities[%d] declares this alias as %s, this one as %s; an alias has one value and the earlier declaration is used, rename or remove one of them",
				namespacedName(prev.owner), prev.index, prev.value, c)
		}
	}
}

// isAliasName reports whether s matches ^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$ and is at most 63
// bytes long, as the Community CRD requires.
func isAliasName(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		inner := c == '-' || c == '.'
		if !alnum && (!inner || i == 0 || i == len(s)-1) {
			return false
		}
	}
	return true
}

// resolveCommunity parses a literal community or looks up an alias (a string without ':').
func (p *parser) resolveCommunity(s string) (Community, string, bool) {
	if strings.Contains(s, ":") {
		c, err := ParseCommunity(s)
		if err != nil {
			return Community{}, reason(err), false
		}
		return c, "", true
	}
	if a, ok := p.aliases[s]; ok {
		return a.value, "", true
	}
	names := sortedKeys(p.aliases)
	if len(names) == 0 {
		return Community{}, "no Community object declares this alias (there are no aliases); " + communityHint + ", or declare the alias in a Community object", false
	}
	return Community{}, "no Community object declares this alias (" + knownNames("alias", names) + "); " + communityHint + ", or declare the alias in a Community object", false
}
