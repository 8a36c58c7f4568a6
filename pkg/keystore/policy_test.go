package keystore_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/metricgate/metricgate/pkg/keystore"
)

// policyNow is the clock of the policy tests.
var policyNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// flagName names fields as keyctl's flags do, to check that errors use the
// caller's names.
func flagName(f keystore.Field) string {
	if f == keystore.FieldNoExpiry {
		return "" // as keyctl generate, which has no --no-expiry
	}
	return "--" + strings.ReplaceAll(string(f), "_", "-")
}

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		name    string
		in      keystore.PolicyInput
		want    string // the Update's String
		wantIs  error  // the sentinel an error wraps
		wantErr string // the whole error message
	}{
		{name: "Nothing", want: ""},
		{name: "ExpiresIn", in: keystore.PolicyInput{ExpiresIn: ptr(" 720h ")}, want: "expires_at=2026-03-31T12:00:00Z"},
		{name: "ExpiresAtOffset", in: keystore.PolicyInput{ExpiresAt: ptr("2026-03-02T00:00:00+02:00")}, want: "expires_at=2026-03-01T22:00:00Z"},
		{name: "NoExpiry", in: keystore.PolicyInput{NoExpiry: true}, want: "expires_at=never"},
		{name: "Scopes", in: keystore.PolicyInput{Scopes: &[]string{"SUBMIT", " admin", "submit"}}, want: "scopes=submit,admin"},
		{name: "Measurements", in: keystore.PolicyInput{Measurements: &[]string{"cpu", " mem "}}, want: "measurements=cpu,mem"},
		{name: "AllMeasurements", in: keystore.PolicyInput{AllMeasurements: true}, want: "measurements=any"},
		{name: "RateBurstDescription", in: keystore.PolicyInput{Rate: ptr(2.5), Burst: ptr(10), Description: ptr("web one")},
			want: `rate=2.5 burst=10 description="web one"`},
		{name: "Defaults", in: keystore.PolicyInput{Rate: ptr(0.0), Burst: ptr(0), Description: ptr("")},
			want: `rate=default burst=default description=""`},
		{name: "LongestDescription", in: keystore.PolicyInput{Description: ptr(strings.Repeat("é", 128))},
			want: "description=" + strings.Repeat("é", 128)},
		{name: "Bucket", in: keystore.PolicyInput{Bucket: ptr("tenant-a")}, want: "bucket=tenant-a"},
		{name: "BucketWithRetentionPolicy", in: keystore.PolicyInput{Bucket: ptr("tenant-a/week")}, want: "bucket=tenant-a/week"},
		{name: "LongestBucket", in: keystore.PolicyInput{Bucket: ptr(strings.Repeat("b", keystore.MaxBucketLen))},
			want: "bucket=" + strings.Repeat("b", keystore.MaxBucketLen)},
		{name: "DefaultBucketAndSeries", in: keystore.PolicyInput{Bucket: ptr(""), MaxSeries: ptr(0)}, want: "bucket=default max_series=default"},
		{name: "MaxSeries", in: keystore.PolicyInput{MaxSeries: ptr(500)}, want: "max_series=500"},
		{name: "MostSeries", in: keystore.PolicyInput{MaxSeries: ptr(keystore.MaxSeriesLimit)}, want: "max_series=1000000"},

		{name: "ExpiresInNotADuration", in: keystore.PolicyInput{ExpiresIn: ptr("30d")}, wantIs: keystore.ErrInvalidPolicy,
			wantErr: `invalid key policy: expires_in "30d" is not a duration such as 720h`},
		{name: "ExpiresInZero", in: keystore.PolicyInput{ExpiresIn: ptr("0s")}, wantIs: keystore.ErrInvalidPolicy,
			wantErr: "invalid key policy: expires_in must be positive, got 0s"},
		{name: "ExpiresInNegative", in: keystore.PolicyInput{ExpiresIn: ptr("-1h")}, wantIs: keystore.ErrInvalidPolicy,
			wantErr: "invalid key policy: expires_in must be positive, got -1h0m0s"},
		{name: "ExpiresAtNotATime", in: keystore.PolicyInput{ExpiresAt: ptr("tomorrow")}, wantIs: keystore.ErrInvalidPolicy,
			wantErr: `invalid key policy: expires_at "tomorrow" is not an RFC 3339 time such as 2027-01-01T00:00:00Z`},
		{name: "ExpiresAtNow", in: keystore.PolicyInput{ExpiresAt: ptr("2026-03-01T13:00:00+01:00")}, wantIs: keystore.ErrInvalidPolicy,
			wantErr: "invalid key policy: expires_at 2026-03-01T12:00:00Z is in the past"},
		{name: "TwoExpiries", in: keystore.PolicyInput{ExpiresIn: ptr("1h"), ExpiresAt: ptr("2027-01-01T00:00:00Z")},
			wantIs: keystore.ErrInvalidPolicy, wantErr: "invalid key policy: expires_in and expires_at cannot be used together"},
		{name: "ThreeExpiries", in: keystore.PolicyInput{ExpiresIn: ptr("bad"), ExpiresAt: ptr("bad"), NoExpiry: true},
			wantIs:  keystore.ErrInvalidPolicy,
			wantErr: "invalid key policy: expires_in and expires_at and no_expiry cannot be used together"},
		{name: "NoScopes", in: keystore.PolicyInput{Scopes: &[]string{}}, wantIs: keystore.ErrInvalidPolicy,
			wantErr: "invalid key policy: scopes must name at least one scope, submit or admin"},
		{name: "UnknownScope", in: keystore.PolicyInput{Scopes: &[]string{"submit", "Root"}}, wantIs: keystore.ErrInvalidScope,
			wantErr: `invalid scope "root" in scopes: want submit or admin`},
		{name: "EmptyScope", in: keystore.PolicyInput{Scopes: &[]string{""}}, wantIs: keystore.ErrInvalidScope,
			wantErr: `invalid scope "" in scopes: want submit or admin`},
		{name: "NoMeasurements", in: keystore.PolicyInput{Measurements: &[]string{}}, wantIs: keystore.ErrInvalidPolicy,
			wantErr: "invalid key policy: measurements must name a measurement, got none"},
		{name: "EmptyMeasurement", in: keystore.PolicyInput{Measurements: &[]string{"cpu", " "}}, wantIs: keystore.ErrInvalidPolicy,
			wantErr: "invalid key policy: measurements must name a measurement, got an empty one"},
		{name: "CommaInMeasurement", in: keystore.PolicyInput{Measurements: &[]string{"a,b"}}, wantIs: keystore.ErrInvalidPolicy,
			wantErr: `invalid key policy: measurements "a,b" must name one measurement, without a comma`},
		{name: "MeasurementsAndAll", in: keystore.PolicyInput{Measurements: &[]string{"cpu"}, AllMeasurements: true},
			wantIs: keystore.ErrInvalidPolicy, wantErr: "invalid key policy: measurements and all_measurements cannot be used together"},
		{name: "NegativeRate", in: keystore.PolicyInput{Rate: ptr(-1.0)}, wantIs: keystore.ErrInvalidPolicy,
			wantErr: "invalid key policy: rate must be a number of points per second, 0 or more, got -1"},
		{name: "NaNRate", in: keystore.PolicyInput{Rate: ptr(math.NaN())}, wantIs: keystore.ErrInvalidPolicy,
			wantErr: "invalid key policy: rate must be a number of points per second, 0 or more, got NaN"},
		{name: "InfRate", in: keystore.PolicyInput{Rate: ptr(math.Inf(1))}, wantIs: keystore.ErrInvalidPolicy,
			wantErr: "invalid key policy: rate must be a number of points per second, 0 or more, got +Inf"},
		{name: "NegativeBurst", in: keystore.PolicyInput{Burst: ptr(-5)}, wantIs: keystore.ErrInvalidPolicy,
			wantErr: "invalid key policy: burst must be 0 or more, got -5"},
		{name: "ControlCharacters", in: keystore.PolicyInput{Description: ptr("a\nb")}, wantIs: keystore.ErrInvalidPolicy,
			wantErr: `invalid key policy: description "a\nb" contains control characters`},
		{name: "LongDescription", in: keystore.PolicyInput{Description: ptr(strings.Repeat("x", keystore.MaxDescriptionLen+1))},
			wantIs: keystore.ErrInvalidPolicy, wantErr: "invalid key policy: description is 257 bytes, longer than 256"},
		{name: "DescriptionNotUTF8", in: keystore.PolicyInput{Description: ptr("web\xff")}, wantIs: keystore.ErrInvalidPolicy,
			wantErr: "invalid key policy: description is not valid UTF-8"},
		{name: "InternalBucket", in: keystore.PolicyInput{Bucket: ptr("_internal")}, wantIs: keystore.ErrInvalidPolicy,
			wantErr: `invalid key policy: bucket "_internal" starts with "_", which InfluxDB keeps for its own databases`},
		{name: "BucketSpaces", in: keystore.PolicyInput{Bucket: ptr(" a")}, wantIs: keystore.ErrInvalidPolicy,
			wantErr: `invalid key policy: bucket " a" starts or ends with a space`},
		{name: "BucketControl", in: keystore.PolicyInput{Bucket: ptr("a\nb")}, wantIs: keystore.ErrInvalidPolicy,
			wantErr: `invalid key policy: bucket "a\nb" must be printable UTF-8`},
		{name: "BucketTwoSlashes", in: keystore.PolicyInput{Bucket: ptr("db/rp/x")}, wantIs: keystore.ErrInvalidPolicy,
			wantErr: `invalid key policy: bucket "db/rp/x" must be a bucket, or a database and retention policy as db/rp`},
		{name: "BucketNoDatabase", in: keystore.PolicyInput{Bucket: ptr("/rp")}, wantIs: keystore.ErrInvalidPolicy,
			wantErr: `invalid key policy: bucket "/rp" must be a bucket, or a database and retention policy as db/rp`},
		{name: "LongBucket", in: keystore.PolicyInput{Bucket: ptr(strings.Repeat("b", keystore.MaxBucketLen+1))},
			wantIs: keystore.ErrInvalidPolicy, wantErr: "invalid key policy: bucket is 256 bytes, longer than 255"},
		{name: "NegativeMaxSeries", in: keystore.PolicyInput{MaxSeries: ptr(-1)}, wantIs: keystore.ErrInvalidPolicy,
			wantErr: "invalid key policy: max_series must be between 0 (the gateway's default) and 1000000 series per hour, got -1"},
		{name: "TooManySeries", in: keystore.PolicyInput{MaxSeries: ptr(keystore.MaxSeriesLimit + 1), Name: flagName},
			wantIs:  keystore.ErrInvalidPolicy,
			wantErr: "invalid key policy: --max-series must be between 0 (the gateway's default) and 1000000 series per hour, got 1000001"},

		{name: "ExpiresIn100Years", in: keystore.PolicyInput{ExpiresIn: ptr("876000h")}, want: "expires_at=2126-02-05T12:00:00Z"},
		{name: "ExpiresInOver100Years", in: keystore.PolicyInput{ExpiresIn: ptr("876001h")}, wantIs: keystore.ErrInvalidPolicy,
			wantErr: "invalid key policy: expires_in 876001h0m0s is longer than 876000h0m0s (100 years)"},
		{name: "ExpiresInLongestDuration", in: keystore.PolicyInput{ExpiresIn: ptr("2562047h")}, wantIs: keystore.ErrInvalidPolicy,
			wantErr: "invalid key policy: expires_in 2562047h0m0s is longer than 876000h0m0s (100 years)"},
		{name: "ExpiresAtOver100Years", in: keystore.PolicyInput{ExpiresAt: ptr("9999-12-31T23:59:59Z")}, wantIs: keystore.ErrInvalidPolicy,
			wantErr: "invalid key policy: expires_at 9999-12-31T23:59:59Z is more than 100 years ahead"},
		{name: "CallersNames", in: keystore.PolicyInput{ExpiresIn: ptr("0s"), Name: flagName}, wantIs: keystore.ErrInvalidPolicy,
			wantErr: "invalid key policy: --expires-in must be positive, got 0s"},
		{name: "CallersNamesForScopes", in: keystore.PolicyInput{Scopes: &[]string{"write"}, Name: flagName},
			wantIs: keystore.ErrInvalidScope, wantErr: `invalid scope "write" in --scopes: want submit or admin`},
		{name: "CallersNamesTogether", in: keystore.PolicyInput{Measurements: &[]string{"cpu"}, AllMeasurements: true, Name: flagName},
			wantIs: keystore.ErrInvalidPolicy, wantErr: "invalid key policy: --measurements and --all-measurements cannot be used together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := keystore.ParsePolicy(tt.in, policyNow)
			if tt.wantErr == "" {
				if err != nil || u.String() != tt.want {
					t.Fatalf("got %s, %v; want %s", u, err, tt.want)
				}
				if u.ExpiresAt != nil && u.ExpiresAt.Location() != time.UTC {
					t.Errorf("expiry %v is not in UTC", *u.ExpiresAt)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr || !errors.Is(err, tt.wantIs) || u != (keystore.Update{}) {
				t.Errorf("got %s, %v; want no change and the error %q matching %v", u.String(), err, tt.wantErr, tt.wantIs)
			}
		})
	}
}

// TestParsePolicyCopies checks that the Update shares no variable with the
// input, so a caller that reuses its input cannot change it.
func TestParsePolicyCopies(t *testing.T) {
	rate, scopes, ms := 1.0, []string{"admin"}, []string{"cpu"}
	u, err := keystore.ParsePolicy(keystore.PolicyInput{Rate: &rate, Scopes: &scopes, Measurements: &ms}, policyNow)
	if err != nil {
		t.Fatal(err)
	}
	rate, scopes[0], ms[0] = 2, "submit", "mem"
	if got, want := u.String(), "scopes=admin measurements=cpu rate=1"; got != want {
		t.Errorf("after changing the input, got %s, want %s", got, want)
	}
}

func TestParseUpdate(t *testing.T) {
	u, err := keystore.ParseUpdate(keystore.PolicyInput{Burst: ptr(0)}, policyNow)
	if err != nil || u.String() != "burst=default" {
		t.Errorf("burst 0: got %s, %v; want burst=0", u.String(), err)
	}
	tests := []struct {
		name string
		in   keystore.PolicyInput
		want string
	}{
		{"StoreNames", keystore.PolicyInput{},
			"invalid key policy: nothing to change: give expires_in, expires_at, no_expiry, scopes, measurements, " +
				"all_measurements, rate, burst, description, name, bucket or max_series"},
		{"OnlyOfferedNames", keystore.PolicyInput{Name: flagName},
			"invalid key policy: nothing to change: give --expires-in, --expires-at, --scopes, --measurements, " +
				"--all-measurements, --rate, --burst, --description, --name, --bucket or --max-series"},
		{"NothingOffered", keystore.PolicyInput{Name: func(keystore.Field) string { return "" }},
			"invalid key policy: nothing to change"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := keystore.ParseUpdate(tt.in, policyNow)
			if err == nil || err.Error() != tt.want || !errors.Is(err, keystore.ErrNoChange) ||
				!errors.Is(err, keystore.ErrInvalidPolicy) || u != (keystore.Update{}) {
				t.Errorf("got %s, %v; want %q matching ErrNoChange and ErrInvalidPolicy", u.String(), err, tt.want)
			}
		})
	}
	if _, err := keystore.ParseUpdate(keystore.PolicyInput{Rate: ptr(-1.0)}, policyNow); errors.Is(err, keystore.ErrNoChange) ||
		!errors.Is(err, keystore.ErrInvalidPolicy) {
		t.Errorf("a bad rate: got %v, want ErrInvalidPolicy, not ErrNoChange", err)
	}
}

func TestUpdateNewKey(t *testing.T) {
	expires := policyNow.Add(time.Hour)
	u := keystore.Update{Description: ptr("d"), ExpiresAt: &expires, Scopes: &[]string{"admin"},
		Measurements: &[]string{"cpu"}, Rate: ptr(2.5), Burst: ptr(3), Bucket: ptr("tenant-a"), MaxSeries: ptr(50)}
	got := fmt.Sprintf("%+v", u.NewKey("web-1"))
	want := fmt.Sprintf("%+v", keystore.NewKey{Hostname: "web-1", Description: "d", ExpiresAt: expires, Scopes: []string{"admin"},
		Measurements: []string{"cpu"}, Rate: 2.5, Burst: 3, Bucket: "tenant-a", MaxSeries: 50})
	if got != want {
		t.Errorf("NewKey = %s, want %s", got, want)
	}
	if got, want := fmt.Sprintf("%+v", keystore.Update{}.NewKey("web-1")), fmt.Sprintf("%+v", keystore.NewKey{Hostname: "web-1"}); got != want {
		t.Errorf("NewKey of no change = %s, want %s", got, want)
	}
}

// TestStoreRefusesUnstorableTimes checks that a Go caller cannot store an
// expiry past what the store's nanoseconds hold, nor a grace that would
// take the old key's end there: either would overflow into the past.
func TestStoreRefusesUnstorableTimes(t *testing.T) {
	forEachBackend(t, testStoreRefusesUnstorableTimes)
}

func testStoreRefusesUnstorableTimes(t *testing.T, b backend) {
	s, _ := openStore(t, b)
	ctx := context.Background()
	far := time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	const want = "invalid key policy: expires_at 2300-01-01T00:00:00Z is later than the store can hold (2262-04-11T23:47:16Z)"
	if _, _, err := s.Generate(ctx, keystore.NewKey{Hostname: "web-1", ExpiresAt: far}); err == nil || err.Error() != want {
		t.Errorf("Generate expiring in 2300: error %v, want %q", err, want)
	}
	k, _ := generate(t, s, keystore.NewKey{Hostname: "web-1"})
	if _, err := s.Update(ctx, k.ID, keystore.Update{ExpiresAt: &far}); err == nil || err.Error() != want {
		t.Errorf("Update to expire in 2300: error %v, want %q", err, want)
	}
	const wantGrace = "invalid key policy: grace must be between 0 and 876000h0m0s (100 years), got 876001h0m0s"
	if _, _, _, err := s.Rotate(ctx, k.ID, 876001*time.Hour); err == nil || err.Error() != wantGrace {
		t.Errorf("Rotate with a grace over 100 years: error %v, want %q", err, wantGrace)
	}
	if got, _ := s.Get(ctx, k.ID); !got.ExpiresAt.IsZero() || got.ReplacedBy != 0 {
		t.Errorf("after refused changes the key is %+v, want it as it was", got)
	}
}

// TestAdminLimits checks which admin keys the admin API may make, widen or
// rotate: one bound to an address, a DNS name or at most a /24 or /64, that
// expires within the limit; and that a change that narrows a key is never
// refused.
func TestAdminLimits(t *testing.T) {
	l := keystore.AdminLimits{MaxTTL: 90 * 24 * time.Hour}
	now := policyNow
	in30d, in90d, in91d := now.Add(30*24*time.Hour), now.Add(90*24*time.Hour), now.Add(91*24*time.Hour)
	admin := []string{"submit", "admin"}
	newKeys := []struct {
		name    string
		nk      keystore.NewKey
		wantErr string // "" for allowed
	}{
		{"SubmitAnywhereForever", keystore.NewKey{Hostname: "0.0.0.0/0"}, ""},
		{"AdminAddress", keystore.NewKey{Hostname: "192.0.2.7", Scopes: admin, ExpiresAt: in30d}, ""},
		{"AdminDNSName", keystore.NewKey{Hostname: "ops.example.com", Scopes: []string{" ADMIN "}, ExpiresAt: in90d}, ""},
		{"Admin24", keystore.NewKey{Hostname: "10.1.2.0/24", Scopes: admin, ExpiresAt: in30d}, ""},
		{"Admin64", keystore.NewKey{Hostname: "2001:db8:1:2::/64", Scopes: admin, ExpiresAt: in30d}, ""},
		{"AdminMapped24", keystore.NewKey{Hostname: "::ffff:10.1.2.0/120", Scopes: admin, ExpiresAt: in30d}, ""},
		{"AdminAnywhere", keystore.NewKey{Hostname: "0.0.0.0/0", Scopes: admin, ExpiresAt: in30d},
			`"hostname" 0.0.0.0/0 is wider than a /24`},
		{"Admin23", keystore.NewKey{Hostname: "10.1.2.0/23", Scopes: admin, ExpiresAt: in30d}, `"hostname" 10.1.2.0/23 is wider than a /24`},
		{"AdminMapped16", keystore.NewKey{Hostname: "::ffff:10.1.0.0/112", Scopes: admin, ExpiresAt: in30d},
			`"hostname" 10.1.0.0/16 is wider than a /24`},
		{"Admin48", keystore.NewKey{Hostname: "2001:db8::/48", Scopes: admin, ExpiresAt: in30d}, `"hostname" 2001:db8::/48 is wider than a /64`},
		{"AdminAnywhereV6", keystore.NewKey{Hostname: "::/0", Scopes: admin, ExpiresAt: in30d}, `"hostname" ::/0 is wider than a /64`},
		{"AdminForever", keystore.NewKey{Hostname: "192.0.2.7", Scopes: admin},
			`an admin key must expire within 2160h0m0s: give "expires_in" or "expires_at"`},
		{"AdminTooLong", keystore.NewKey{Hostname: "192.0.2.7", Scopes: admin, ExpiresAt: in91d},
			"an admin key must expire within 2160h0m0s, by 2026-05-30T12:00:00Z, not at 2026-05-31T12:00:00Z"},
	}
	for _, tt := range newKeys {
		t.Run("New/"+tt.name, func(t *testing.T) {
			checkAdminLimit(t, l.CheckNew(tt.nk, now), tt.wantErr)
		})
	}

	keyctlMade := keystore.Key{ID: 4, Hostname: "0.0.0.0/0", Scopes: admin} // beyond the limits, as keyctl may make
	narrow := keystore.Key{ID: 5, Hostname: "192.0.2.7", Scopes: admin, ExpiresAt: in30d}
	submitOnly := keystore.Key{ID: 6, Hostname: "192.0.2.7", Scopes: []string{"submit"}}
	never := time.Time{}
	updates := []struct {
		name    string
		k       keystore.Key
		u       keystore.Update
		wantErr string
	}{
		{"GrantWithoutExpiry", submitOnly, keystore.Update{Scopes: &admin}, `an admin key must expire within 2160h0m0s`},
		{"GrantWithExpiry", submitOnly, keystore.Update{Scopes: &admin, ExpiresAt: &in90d}, ""},
		{"GrantOnWideBinding", keystore.Key{Hostname: "10.0.0.0/8", Scopes: []string{"submit"}}, keystore.Update{Scopes: &admin, ExpiresAt: &in30d},
			`"hostname" 10.0.0.0/8 is wider than a /24`},
		{"ExtendBeyond", narrow, keystore.Update{ExpiresAt: &in91d}, "an admin key must expire within 2160h0m0s"},
		{"ExtendForever", narrow, keystore.Update{ExpiresAt: &never}, "an admin key must expire within 2160h0m0s"},
		{"ExtendWithin", narrow, keystore.Update{ExpiresAt: &in90d}, ""},
		{"ExtendWideKey", keystore.Key{Hostname: "0.0.0.0/0", Scopes: admin, ExpiresAt: in30d}, keystore.Update{ExpiresAt: &in90d},
			`"hostname" 0.0.0.0/0 is wider than a /24`},
		{"ShortenKeyctlMade", keyctlMade, keystore.Update{ExpiresAt: &in30d}, ""},
		{"DescribeKeyctlMade", keyctlMade, keystore.Update{Description: ptr("ops")}, ""},
		{"DropAdminForever", narrow, keystore.Update{Scopes: &[]string{"submit"}, ExpiresAt: &never}, ""},
		{"SubmitForever", submitOnly, keystore.Update{ExpiresAt: &never}, ""},
	}
	for _, tt := range updates {
		t.Run("Update/"+tt.name, func(t *testing.T) {
			checkAdminLimit(t, l.CheckUpdate(tt.k, tt.u, now), tt.wantErr)
		})
	}

	rotations := []struct {
		name    string
		k       keystore.Key
		wantErr string
	}{
		{"Narrow", narrow, ""},
		{"Submit", keystore.Key{Hostname: "0.0.0.0/0", Scopes: []string{"submit"}}, ""},
		{"KeyctlMade", keyctlMade, "key 4 cannot be rotated over HTTP (set an expiry first, or rotate it with keyctl)"},
	}
	for _, tt := range rotations {
		t.Run("Rotate/"+tt.name, func(t *testing.T) {
			checkAdminLimit(t, l.CheckRotate(tt.k, now), tt.wantErr)
		})
	}
}

// checkAdminLimit fails unless err is nil when want is empty, and otherwise
// an ErrAdminLimit (so ErrInvalidPolicy) whose message contains want.
func checkAdminLimit(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("got %v, want it allowed", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, keystore.ErrAdminLimit) ||
		!errors.Is(err, keystore.ErrInvalidPolicy)):
		t.Errorf("got %v, want ErrAdminLimit saying %q", err, want)
	}
}

// TestStoreAppliesPolicy checks that the Store refuses what ParsePolicy
// refuses, with the same message, and normalizes as it does: there is one
// set of rules.
func TestStoreAppliesPolicy(t *testing.T) { forEachBackend(t, testStoreAppliesPolicy) }

func testStoreAppliesPolicy(t *testing.T, b backend) {
	s, _ := openStore(t, b)
	ctx := context.Background()
	k, _ := generate(t, s, keystore.NewKey{Hostname: "web-1", Scopes: []string{" Admin ", "admin"}, Measurements: []string{" cpu "}})
	if fmt.Sprint(k.Scopes, k.Measurements) != "[admin] [cpu]" {
		t.Errorf("generated scopes %q, measurements %q; want [admin] and [cpu]", k.Scopes, k.Measurements)
	}
	for _, in := range []keystore.PolicyInput{
		{Scopes: &[]string{"root"}},
		{Measurements: &[]string{"cpu", ""}},
		{Measurements: &[]string{"a,b"}},
		{Rate: ptr(math.Inf(-1))},
		{Burst: ptr(-1)},
		{Description: ptr("\x1b[2J")},
		{Bucket: ptr("_internal")},
		{Bucket: ptr("a/b/c")},
		{MaxSeries: ptr(-1)},
		{MaxSeries: ptr(keystore.MaxSeriesLimit + 1)},
	} {
		_, want := keystore.ParsePolicy(in, policyNow)
		u := keystore.Update{Scopes: in.Scopes, Measurements: in.Measurements, Rate: in.Rate, Burst: in.Burst, Description: in.Description,
			Bucket: in.Bucket, MaxSeries: in.MaxSeries}
		if _, err := s.Update(ctx, k.ID, u); err == nil || want == nil || err.Error() != want.Error() {
			t.Errorf("Update(%s) error = %v, want %v as ParsePolicy says", u.String(), err, want)
		}
		if _, _, err := s.Generate(ctx, u.NewKey("web-2")); err == nil || err.Error() != want.Error() {
			t.Errorf("Generate(%s) error = %v, want %v as ParsePolicy says", u.String(), err, want)
		}
	}
	if keys, _ := s.List(ctx, keystore.Filter{All: true}); len(keys) != 1 {
		t.Errorf("%d keys after refused changes, want 1", len(keys))
	}
}

// FuzzParsePolicy checks that any input gives a policy error or an Update
// the store can keep: no panic, no other error, measurement names that
// survive being stored comma-separated, and a result that parses to
// itself.
func FuzzParsePolicy(f *testing.F) {
	f.Add("720h", "", "submit", "cpu", 2.5, 10, "web one")
	f.Add("", "2027-01-01T00:00:00Z", "ADMIN", " mem ", 0.0, 0, "")
	f.Add("-1h", "x", "root", "a,b", -1.0, -1, "\x00")
	f.Fuzz(func(t *testing.T, expiresIn, expiresAt, scope, measurement string, rate float64, burst int, desc string) {
		in := keystore.PolicyInput{Scopes: &[]string{scope}, Measurements: &[]string{measurement},
			Rate: &rate, Burst: &burst, Description: &desc}
		if expiresIn != "" {
			in.ExpiresIn = &expiresIn
		}
		if expiresAt != "" {
			in.ExpiresAt = &expiresAt
		}
		u, err := keystore.ParsePolicy(in, policyNow)
		if err != nil {
			if !errors.Is(err, keystore.ErrInvalidPolicy) && !errors.Is(err, keystore.ErrInvalidScope) {
				t.Fatalf("error %v is neither ErrInvalidPolicy nor ErrInvalidScope", err)
			}
			return
		}
		for _, m := range *u.Measurements {
			if m == "" || strings.Contains(m, ",") {
				t.Fatalf("measurement %q cannot be stored", m)
			}
		}
		if u.ExpiresAt != nil && !u.ExpiresAt.After(policyNow) {
			t.Fatalf("expiry %v is not after now", u.ExpiresAt)
		}
		again, err := keystore.ParsePolicy(keystore.PolicyInput{Scopes: u.Scopes, Measurements: u.Measurements,
			Rate: u.Rate, Burst: u.Burst, Description: u.Description}, policyNow)
		u.ExpiresAt = nil
		if err != nil || again.String() != u.String() {
			t.Fatalf("parsing %s again gave %s, %v", u.String(), again.String(), err)
		}
	})
}
