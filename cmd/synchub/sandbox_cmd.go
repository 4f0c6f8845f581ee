package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/synchub/synchub/connectors/webhook"

	hubspotfake "github.com/synchub/synchub/connectors/hubspot/fake"
	intercomfake "github.com/synchub/synchub/connectors/intercom/fake"
	mailchimpfake "github.com/synchub/synchub/connectors/mailchimp/fake"
	marketofake "github.com/synchub/synchub/connectors/marketo/fake"
	salesforcefake "github.com/synchub/synchub/connectors/salesforce/fake"
)

// The credentials the sandbox's Marketo accepts (its fake takes any pair).
const (
	sandboxMarketoClientID     = "sandbox-marketo-client-id"
	sandboxMarketoClientSecret = "sandbox-marketo-client-secret"
)

// sandboxListID is the Mailchimp audience configs/sandbox.yaml names; the
// sandbox maps it to its fake's own (random) audience.
const sandboxListID = "sandbox"

// sandboxOrder is the order of the sandbox's servers, one port each from
// --port on.
var sandboxOrder = []string{"hubspot", "salesforce", "marketo", "mailchimp", "intercom", "webhook"}

// envVar is a credential the sandbox accepts, under the variable name
// configs/sandbox.yaml reads it from.
type envVar struct{ name, value string }

// fakeVendor is one started vendor fake and the credentials it accepts.
type fakeVendor struct {
	name string
	// origin is the fake's scheme://host (Mailchimp's API root is
	// origin + /3.0).
	origin string
	close  func()

	token        string // hubspot private app token, intercom access token
	clientID     string // hubspot OAuth, salesforce, marketo
	clientSecret string
	refreshToken string // hubspot OAuth, salesforce
	apiKey       string // mailchimp
	listID       string // mailchimp's audience
}

// env returns the variables configs/sandbox.yaml names for f's credentials.
func (f *fakeVendor) env() []envVar {
	switch f.name {
	case "hubspot":
		return []envVar{{"SANDBOX_HUBSPOT_TOKEN", f.token}}
	case "salesforce":
		return []envVar{
			{"SANDBOX_SALESFORCE_CLIENT_ID", f.clientID},
			{"SANDBOX_SALESFORCE_CLIENT_SECRET", f.clientSecret},
			{"SANDBOX_SALESFORCE_REFRESH_TOKEN", f.refreshToken},
		}
	case "marketo":
		return []envVar{
			{"SANDBOX_MARKETO_CLIENT_ID", f.clientID},
			{"SANDBOX_MARKETO_CLIENT_SECRET", f.clientSecret},
		}
	case "mailchimp":
		return []envVar{{"SANDBOX_MAILCHIMP_API_KEY", f.apiKey}}
	case "intercom":
		return []envVar{{"SANDBOX_INTERCOM_TOKEN", f.token}}
	}
	return nil
}

// startFake starts the fake of vendor name on a random local port.
func startFake(name string) (f *fakeVendor, err error) {
	// The fakes panic when they cannot load their API descriptions
	// (Marketo's live in shared/specs, found from the working directory).
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("starting the %s fake: %v", name, r)
		}
	}()
	switch name {
	case "hubspot":
		s := hubspotfake.New()
		return &fakeVendor{name: name, origin: s.URL(), close: s.Close, token: hubspotfake.PrivateAppToken,
			clientID: hubspotfake.ClientID, clientSecret: hubspotfake.ClientSecret, refreshToken: hubspotfake.RefreshToken}, nil
	case "salesforce":
		s := salesforcefake.New()
		return &fakeVendor{name: name, origin: s.URL(), close: s.Close,
			clientID: salesforcefake.ClientID, clientSecret: salesforcefake.ClientSecret, refreshToken: salesforcefake.RefreshToken}, nil
	case "marketo":
		s := marketofake.New(marketofake.WithCredentials(sandboxMarketoClientID, sandboxMarketoClientSecret))
		return &fakeVendor{name: name, origin: s.URL(), close: s.Close,
			clientID: sandboxMarketoClientID, clientSecret: sandboxMarketoClientSecret}, nil
	case "mailchimp":
		s := mailchimpfake.New()
		return &fakeVendor{name: name, origin: strings.TrimSuffix(s.URL(), "/3.0"), close: s.Close,
			apiKey: s.APIKey(), listID: s.ListID()}, nil
	case "intercom":
		s := intercomfake.New()
		return &fakeVendor{name: name, origin: s.URL(), close: s.Close, token: s.Token()}, nil
	}
	return nil, fmt.Errorf("no fake for connector %q", name)
}

// newFakeProxy forwards every request to f. For Mailchimp, requests for the
// audience listID are sent to the fake's own audience instead.
func newFakeProxy(f *fakeVendor, listID string) (*httputil.ReverseProxy, error) {
	target, err := url.Parse(f.origin)
	if err != nil {
		return nil, fmt.Errorf("%s fake URL: %w", f.name, err)
	}
	from := "/3.0/lists/" + listID
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			if f.listID == "" || listID == "" {
				return
			}
			if p := pr.Out.URL.Path; p == from || strings.HasPrefix(p, from+"/") {
				pr.Out.URL.Path = "/3.0/lists/" + f.listID + strings.TrimPrefix(p, from)
				pr.Out.URL.RawPath = ""
			}
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "sandbox: "+f.name+" fake unreachable: "+err.Error(), http.StatusBadGateway)
		},
	}, nil
}

// webhookSink is the sandbox's webhook endpoint: any POST path (like
// /hooks/org_webhook), signatures verified with one secret. GET /__records
// lists the accepted deliveries, newest last.
type webhookSink struct {
	secret webhook.Secret

	mu         sync.Mutex
	deliveries []sinkDelivery
}

type sinkDelivery struct {
	Path      string          `json:"path"`
	WebhookID string          `json:"webhook_id"`
	Body      json.RawMessage `json:"body"`
}

// sinkKeep bounds the deliveries the sink remembers.
const sinkKeep = 1000

func (s *webhookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/__records" {
		s.mu.Lock()
		data, err := json.Marshal(append([]sinkDelivery{}, s.deliveries...))
		s.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(append(data, '\n'))
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "POST a webhook, or GET /__records", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	if err != nil {
		http.Error(w, "cannot read the body", http.StatusBadRequest)
		return
	}
	if err := webhook.Verify(s.secret, r.Header, body, 5*time.Minute, time.Now()); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if !json.Valid(body) {
		http.Error(w, "body is not JSON", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.deliveries = append(s.deliveries, sinkDelivery{Path: r.URL.Path, WebhookID: r.Header.Get("webhook-id"), Body: body})
	if n := len(s.deliveries); n > sinkKeep {
		s.deliveries = append([]sinkDelivery(nil), s.deliveries[n-sinkKeep:]...)
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// newWebhookSecret returns a fresh "whsec_" signing secret.
func newWebhookSecret() (string, webhook.Secret, error) {
	key := make([]byte, 24)
	if _, err := rand.Read(key); err != nil {
		return "", webhook.Secret{}, err
	}
	s := "whsec_" + base64.StdEncoding.EncodeToString(key)
	sec, err := webhook.ParseSecret(s)
	return s, sec, err
}

// sandboxServer is one server of the sandbox on its fixed port.
type sandboxServer struct {
	name    string
	baseURL string
	env     []envVar
	note    string
}

// sandbox is the running set of fakes behind their fixed ports.
type sandbox struct {
	servers []sandboxServer
	closers []func()
}

// startSandbox starts the fakes and the webhook sink and serves them on
// listen:port, listen:port+1, … in sandboxOrder.
func startSandbox(listen string, port int) (sb *sandbox, err error) {
	sb = &sandbox{}
	defer func() {
		if err != nil {
			sb.Close()
			sb = nil
		}
	}()
	for i, name := range sandboxOrder {
		addr := net.JoinHostPort(listen, strconv.Itoa(port+i))
		srv := sandboxServer{name: name}
		var h http.Handler
		if name == "webhook" {
			text, secret, err := newWebhookSecret()
			if err != nil {
				return sb, fmt.Errorf("webhook secret: %w", err)
			}
			h = &webhookSink{secret: secret}
			srv.env = []envVar{{"SANDBOX_WEBHOOK_SECRET", text}}
			srv.note = "POST to /hooks/<customer>"
		} else {
			f, err := startFake(name)
			if err != nil {
				return sb, err
			}
			sb.closers = append(sb.closers, f.close)
			listID := ""
			if name == "mailchimp" {
				listID = sandboxListID
				srv.note = "list_id " + sandboxListID
			}
			p, err := newFakeProxy(f, listID)
			if err != nil {
				return sb, err
			}
			h, srv.env = p, f.env()
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return sb, fmt.Errorf("sandbox %s: %w", name, err)
		}
		hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = hs.Serve(ln) }()
		sb.closers = append(sb.closers, func() { _ = hs.Close() })
		srv.baseURL = "http://" + ln.Addr().String()
		sb.servers = append(sb.servers, srv)
	}
	return sb, nil
}

// Close stops every server, then every fake.
func (sb *sandbox) Close() {
	for i := len(sb.closers) - 1; i >= 0; i-- {
		sb.closers[i]()
	}
	sb.closers = nil
}

// print writes one line per server: name, base_url, records URL and the
// credentials to export.
func (sb *sandbox) print(w io.Writer) {
	for _, s := range sb.servers {
		var exports []string
		for _, e := range s.env {
			exports = append(exports, e.name+"="+e.value)
		}
		line := fmt.Sprintf("%-10s base_url=%s  records=%s/__records  export %s", s.name, s.baseURL, s.baseURL, strings.Join(exports, " "))
		if s.note != "" {
			line += "  # " + s.note
		}
		fmt.Fprintln(w, line)
	}
}

func cmdSandbox(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sandbox", stderr)
	listen := fs.String("listen", "127.0.0.1", "address the sandbox listens on")
	port := fs.Int("port", 7100, "first of six consecutive ports: hubspot, salesforce, marketo, mailchimp, intercom, webhook")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *port < 1 || *port+len(sandboxOrder)-1 > 65535 {
		return fmt.Errorf("%w: --port must be between 1 and %d, got %d", errUsage, 65535-len(sandboxOrder)+1, *port)
	}
	sb, err := startSandbox(*listen, *port)
	if err != nil {
		return err
	}
	defer sb.Close()
	sb.print(stdout)
	fmt.Fprintln(stdout, "sandbox running (Ctrl-C stops it); export the variables above, then: synchub run --config configs/sandbox.yaml")
	<-ctx.Done()
	return nil
}
