// STAND-IN provider logic for command:local:Command (istio-ca). Not the upstream pulumi-command
// provider; written from the public schema/docs. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/blang/semver"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

const (
	commandToken = "command:local:Command"
	runToken     = "command:local:run"
)

// Input property names of command:local:Command (public schema of @pulumi/command 1.2.1).
const (
	pCreate                 = "create"
	pUpdate                 = "update"
	pDelete                 = "delete"
	pDir                    = "dir"
	pEnvironment            = "environment"
	pInterpreter            = "interpreter"
	pStdin                  = "stdin"
	pLogging                = "logging"
	pTriggers               = "triggers"
	pAddPreviousOutputInEnv = "addPreviousOutputInEnv"
	pAssetPaths             = "assetPaths"
	pArchivePaths           = "archivePaths"
	// outputs only
	pStdout  = "stdout"
	pStderr  = "stderr"
	pAssets  = "assets"
	pArchive = "archive"
)

// inputKeys are all inputs the schema declares, in a fixed order.
var inputKeys = []resource.PropertyKey{
	pAddPreviousOutputInEnv, pArchivePaths, pAssetPaths, pCreate, pDelete, pDir, pEnvironment,
	pInterpreter, pLogging, pStdin, pTriggers, pUpdate,
}

// replaceKeys: a change of these inputs replaces the resource (schema: replaceOnChanges).
var replaceKeys = map[resource.PropertyKey]bool{pTriggers: true}

type commandProvider struct {
	plugin.UnimplementedProvider

	version semver.Version

	mu       sync.Mutex
	engine   pulumirpc.EngineClient
	conn     *grpc.ClientConn
	cancels  map[int]context.CancelFunc
	nextOpID int
}

func newProvider(version string) *commandProvider {
	return &commandProvider{version: semver.MustParse(version), cancels: map[int]context.CancelFunc{}}
}

// connectEngine opens the engine's gRPC endpoint, used to stream command output as log lines.
func (p *commandProvider) connectEngine(addr string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		return nil
	}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		rpcutil.GrpcChannelOptions())
	if err != nil {
		return err
	}
	p.conn, p.engine = conn, pulumirpc.NewEngineClient(conn)
	return nil
}

func (p *commandProvider) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		err := p.conn.Close()
		p.conn, p.engine = nil, nil
		return err
	}
	return nil
}

// operation returns a context for one command run that SignalCancellation (or shutdown) cancels,
// bounded by the resource's custom timeout when the engine sends one.
func (p *commandProvider) operation(ctx context.Context, timeoutSeconds float64) (context.Context, func()) {
	var cancel context.CancelFunc
	if timeoutSeconds > 0 {
		ctx, cancel = context.WithTimeout(ctx, time.Duration(timeoutSeconds*float64(time.Second)))
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	p.mu.Lock()
	id := p.nextOpID
	p.nextOpID++
	p.cancels[id] = cancel
	p.mu.Unlock()
	return ctx, func() {
		p.mu.Lock()
		delete(p.cancels, id)
		p.mu.Unlock()
		cancel()
	}
}

func (p *commandProvider) cancelAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.cancels {
		c()
	}
}

// logger returns a function that sends one line of command output to the engine as an
// ephemeral (status) info message for the resource, which `pulumi up` shows live.
func (p *commandProvider) logger(urn resource.URN) func(string) {
	p.mu.Lock()
	engine := p.engine
	p.mu.Unlock()
	if engine == nil {
		return func(string) {}
	}
	return func(line string) {
		// Best effort: a failed log call must not fail the command.
		_, _ = engine.Log(context.Background(), &pulumirpc.LogRequest{
			Severity:  pulumirpc.LogSeverity_INFO,
			Message:   line,
			Urn:       string(urn),
			Ephemeral: true,
		})
	}
}

// --- plugin lifecycle ------------------------------------------------------------------------

func (p *commandProvider) Handshake(
	_ context.Context, req plugin.ProviderHandshakeRequest,
) (*plugin.ProviderHandshakeResponse, error) {
	if req.EngineAddress != "" {
		if err := p.connectEngine(req.EngineAddress); err != nil {
			return nil, err
		}
	}
	return &plugin.ProviderHandshakeResponse{AcceptSecrets: true, AcceptResources: true}, nil
}

func (p *commandProvider) GetPluginInfo(context.Context) (plugin.PluginInfo, error) {
	v := p.version
	return plugin.PluginInfo{Version: &v}, nil
}

func (p *commandProvider) GetSchema(context.Context, plugin.GetSchemaRequest) (plugin.GetSchemaResponse, error) {
	return plugin.GetSchemaResponse{Schema: []byte(schemaJSON(p.version.String()))}, nil
}

func (p *commandProvider) CheckConfig(_ context.Context, req plugin.CheckConfigRequest) (plugin.CheckConfigResponse, error) {
	return plugin.CheckConfigResponse{Properties: req.News}, nil
}

func (p *commandProvider) DiffConfig(context.Context, plugin.DiffConfigRequest) (plugin.DiffConfigResponse, error) {
	return plugin.DiffResult{Changes: plugin.DiffNone}, nil
}

func (p *commandProvider) Configure(context.Context, plugin.ConfigureRequest) (plugin.ConfigureResponse, error) {
	return plugin.ConfigureResponse{}, nil
}

func (p *commandProvider) SignalCancellation(context.Context) error {
	p.cancelAll()
	return nil
}

func (p *commandProvider) Invoke(_ context.Context, req plugin.InvokeRequest) (plugin.InvokeResponse, error) {
	return plugin.InvokeResponse{}, fmt.Errorf(
		"%s is not supported by the istio-ca stand-in of the command provider (only %s is)", req.Tok, commandToken)
}

func unsupportedType(t fmt.Stringer) error {
	return fmt.Errorf("resource type %s is not supported by the istio-ca stand-in of the command provider (only %s is)",
		t, commandToken)
}

// --- command:local:Command CRUD --------------------------------------------------------------

func (p *commandProvider) Check(_ context.Context, req plugin.CheckRequest) (plugin.CheckResponse, error) {
	if string(req.Type) != commandToken {
		return plugin.CheckResponse{}, unsupportedType(req.Type)
	}
	return plugin.CheckResponse{Properties: req.News, Failures: checkInputs(req.News)}, nil
}

// checkInputs validates types where values are known; unknown values pass (preview).
func checkInputs(news resource.PropertyMap) []plugin.CheckFailure {
	var failures []plugin.CheckFailure
	fail := func(k resource.PropertyKey, format string, args ...any) {
		failures = append(failures, plugin.CheckFailure{Property: k, Reason: fmt.Sprintf(format, args...)})
	}
	known := map[resource.PropertyKey]bool{}
	for _, k := range inputKeys {
		known[k] = true
	}
	for _, k := range news.StableKeys() {
		v := unwrapSecret(news[k])
		if !known[k] && !strings.HasPrefix(string(k), "__") {
			fail(k, "unknown input property %q of %s", k, commandToken)
			continue
		}
		if v.IsNull() || v.ContainsUnknowns() {
			continue
		}
		switch k {
		case pCreate, pUpdate, pDelete, pDir, pStdin:
			if !v.IsString() {
				fail(k, "%s must be a string", k)
			}
		case pAddPreviousOutputInEnv:
			if !v.IsBool() {
				fail(k, "%s must be a boolean", k)
			}
		case pLogging:
			if !v.IsString() {
				fail(k, "%s must be a string", k)
			} else if _, ok := parseLogging(v.StringValue()); !ok {
				fail(k, "%s must be one of stdout, stderr, stdoutAndStderr, none (got %q)", k, v.StringValue())
			}
		case pInterpreter:
			if !v.IsArray() {
				fail(k, "%s must be a list of strings", k)
			} else {
				for i, e := range v.ArrayValue() {
					if e = unwrapSecret(e); !e.IsString() && !e.ContainsUnknowns() {
						fail(k, "%s[%d] must be a string", k, i)
					}
				}
			}
		case pEnvironment:
			if !v.IsObject() {
				fail(k, "%s must be a map of strings", k)
			} else {
				for ek, e := range v.ObjectValue() {
					if e = unwrapSecret(e); !e.IsString() && !e.IsNull() && !e.ContainsUnknowns() {
						fail(k, "%s.%s must be a string", k, ek)
					}
				}
			}
		case pTriggers:
			if !v.IsArray() {
				fail(k, "%s must be a list", k)
			}
		case pAssetPaths, pArchivePaths:
			if !v.IsArray() || len(v.ArrayValue()) > 0 {
				fail(k, "%s is not supported by the istio-ca stand-in of the command provider", k)
			}
		}
	}
	return failures
}

func (p *commandProvider) Diff(_ context.Context, req plugin.DiffRequest) (plugin.DiffResult, error) {
	if string(req.Type) != commandToken {
		return plugin.DiffResult{}, unsupportedType(req.Type)
	}
	olds := req.OldInputs
	if len(olds) == 0 {
		olds = req.OldOutputs // state written without separate inputs: the outputs carry every input
	}
	return diffInputs(olds, req.NewInputs, req.IgnoreChanges), nil
}

// diffInputs compares old and new inputs. A change of triggers (or an unknown trigger in
// preview) means replace; any other change means update; none means no diff.
func diffInputs(olds, news resource.PropertyMap, ignoreChanges []string) plugin.DiffResult {
	ignored := map[string]bool{}
	for _, ic := range ignoreChanges {
		ignored[ic] = true
	}
	detailed := map[string]plugin.PropertyDiff{}
	var changed, replaced []resource.PropertyKey
	for _, k := range inputKeys {
		if ignored[string(k)] {
			continue
		}
		o, hasOld := olds[k]
		n, hasNew := news[k]
		hasOld = hasOld && !o.IsNull()
		hasNew = hasNew && !n.IsNull()
		var kind plugin.DiffKind
		switch {
		case !hasOld && !hasNew:
			continue
		case !hasOld:
			kind = plugin.DiffAdd
		case !hasNew:
			kind = plugin.DiffDelete
		case n.ContainsUnknowns():
			kind = plugin.DiffUpdate
		case o.DeepEquals(n):
			continue
		default:
			kind = plugin.DiffUpdate
		}
		replace := replaceKeys[k]
		// Only the secretness changed: record it (update), but it is not a new trigger value.
		if kind == plugin.DiffUpdate && hasOld && !n.ContainsUnknowns() &&
			stripSecrets(o).DeepEquals(stripSecrets(n)) {
			replace = false
		}
		if replace {
			kind = kind.AsReplace()
			replaced = append(replaced, k)
		}
		changed = append(changed, k)
		detailed[string(k)] = plugin.PropertyDiff{Kind: kind, InputDiff: true}
	}
	if len(changed) == 0 {
		return plugin.DiffResult{Changes: plugin.DiffNone}
	}
	return plugin.DiffResult{
		Changes:      plugin.DiffSome,
		ChangedKeys:  changed,
		ReplaceKeys:  replaced,
		DetailedDiff: detailed,
	}
}

func (p *commandProvider) Create(ctx context.Context, req plugin.CreateRequest) (plugin.CreateResponse, error) {
	if string(req.Type) != commandToken {
		return plugin.CreateResponse{}, unsupportedType(req.Type)
	}
	id, err := resource.NewUniqueHex(req.Name, 8, 0)
	if err != nil {
		return plugin.CreateResponse{}, err
	}
	if req.Preview {
		// Nothing runs in preview; stdout/stderr are unknown until the command has run.
		return plugin.CreateResponse{ID: resource.ID(id), Properties: previewOutputs(req.Properties)}, nil
	}
	in, err := decodeInputs(req.Properties)
	if err != nil {
		return plugin.CreateResponse{}, err
	}
	res := result{}
	if in.create != nil {
		opctx, done := p.operation(ctx, req.Timeout)
		defer done()
		if res, err = runCommand(opctx, *in.create, in, result{}, p.logger(req.URN)); err != nil {
			// No ID: the engine records nothing, so the next `pulumi up` creates (runs) it again.
			return plugin.CreateResponse{}, err
		}
	}
	return plugin.CreateResponse{ID: resource.ID(id), Properties: outputs(req.Properties, res)}, nil
}

func (p *commandProvider) Update(ctx context.Context, req plugin.UpdateRequest) (plugin.UpdateResponse, error) {
	if string(req.Type) != commandToken {
		return plugin.UpdateResponse{}, unsupportedType(req.Type)
	}
	if req.Preview {
		return plugin.UpdateResponse{Properties: previewOutputs(req.NewInputs)}, nil
	}
	in, err := decodeInputs(req.NewInputs)
	if err != nil {
		return plugin.UpdateResponse{}, err
	}
	prev := previousResult(req.OldOutputs)
	cmd := in.update
	if cmd == nil {
		cmd = in.create
	}
	res := prev
	if cmd != nil {
		opctx, done := p.operation(ctx, req.Timeout)
		defer done()
		if res, err = runCommand(opctx, *cmd, in, prev, p.logger(req.URN)); err != nil {
			// The engine keeps the old state; the next `pulumi up` diffs against it and runs this again.
			return plugin.UpdateResponse{}, err
		}
	}
	return plugin.UpdateResponse{Properties: outputs(req.NewInputs, res)}, nil
}

func (p *commandProvider) Delete(ctx context.Context, req plugin.DeleteRequest) (plugin.DeleteResponse, error) {
	if string(req.Type) != commandToken {
		return plugin.DeleteResponse{}, unsupportedType(req.Type)
	}
	// The state (outputs) carries every input as well as the last stdout/stderr.
	props := req.Outputs
	if len(props) == 0 {
		props = req.Inputs
	}
	in, err := decodeInputs(props)
	if err != nil {
		return plugin.DeleteResponse{}, err
	}
	if in.delete == nil {
		return plugin.DeleteResponse{}, nil
	}
	opctx, done := p.operation(ctx, req.Timeout)
	defer done()
	_, err = runCommand(opctx, *in.delete, in, previousResult(props), p.logger(req.URN))
	return plugin.DeleteResponse{}, err
}

// Read (refresh/import) returns the recorded state unchanged: a command has nothing to read back.
func (p *commandProvider) Read(_ context.Context, req plugin.ReadRequest) (plugin.ReadResponse, error) {
	if string(req.Type) != commandToken {
		return plugin.ReadResponse{}, unsupportedType(req.Type)
	}
	if req.State == nil {
		return plugin.ReadResponse{}, errors.New(
			"importing command:local:Command is not supported by the istio-ca stand-in")
	}
	return plugin.ReadResponse{ReadResult: plugin.ReadResult{
		ID: req.ID, Inputs: req.Inputs, Outputs: req.State,
	}, Status: resource.StatusOK}, nil
}

// --- property helpers ------------------------------------------------------------------------

// outputs = every input (secret markers kept) + stdout/stderr. Every output depends on every input:
// if any input is secret, stdout and stderr are secret too.
func outputs(inputs resource.PropertyMap, res result) resource.PropertyMap {
	out := inputOnly(inputs)
	secret := resource.NewObjectProperty(inputs).ContainsSecrets()
	wrap := func(s string) resource.PropertyValue {
		v := resource.NewStringProperty(s)
		if secret {
			v = resource.MakeSecret(v)
		}
		return v
	}
	out[pStdout] = wrap(res.stdout)
	out[pStderr] = wrap(res.stderr)
	return out
}

func previewOutputs(inputs resource.PropertyMap) resource.PropertyMap {
	out := inputOnly(inputs)
	unknown := resource.MakeComputed(resource.NewStringProperty(""))
	out[pStdout] = unknown
	out[pStderr] = unknown
	return out
}

func inputOnly(m resource.PropertyMap) resource.PropertyMap {
	out := resource.PropertyMap{}
	for _, k := range inputKeys {
		if v, ok := m[k]; ok && !v.IsNull() {
			out[k] = v
		}
	}
	return out
}

func previousResult(state resource.PropertyMap) result {
	get := func(k resource.PropertyKey) string {
		if v := unwrapSecret(state[k]); v.IsString() {
			return v.StringValue()
		}
		return ""
	}
	return result{stdout: get(pStdout), stderr: get(pStderr)}
}

// inputs is the decoded, secret-free view of the inputs a command run needs.
type inputs struct {
	create, update, delete *string
	dir                    string
	environment            map[string]string
	interpreter            []string
	stdin                  string
	logging                loggingMode
	addPreviousOutputInEnv bool
}

func decodeInputs(m resource.PropertyMap) (inputs, error) {
	in := inputs{logging: logStdoutAndStderr, addPreviousOutputInEnv: true, environment: map[string]string{}}
	m = inputOnly(m) // state passed to Delete also holds stdout/stderr
	if f := checkInputs(m); len(f) > 0 {
		return in, fmt.Errorf("invalid inputs: %s: %s", f[0].Property, f[0].Reason)
	}
	for k, v := range m {
		if unwrapSecret(v).ContainsUnknowns() {
			return in, fmt.Errorf("input %s is unknown outside of preview", k)
		}
	}
	str := func(k resource.PropertyKey) *string {
		if v := unwrapSecret(m[k]); v.IsString() {
			s := v.StringValue()
			return &s
		}
		return nil
	}
	in.create, in.update, in.delete = str(pCreate), str(pUpdate), str(pDelete)
	if s := str(pDir); s != nil {
		in.dir = *s
	}
	if s := str(pStdin); s != nil {
		in.stdin = *s
	}
	if s := str(pLogging); s != nil {
		in.logging, _ = parseLogging(*s)
	}
	if v := unwrapSecret(m[pAddPreviousOutputInEnv]); v.IsBool() {
		in.addPreviousOutputInEnv = v.BoolValue()
	}
	if v := unwrapSecret(m[pInterpreter]); v.IsArray() {
		for _, e := range v.ArrayValue() {
			in.interpreter = append(in.interpreter, unwrapSecret(e).StringValue())
		}
	}
	if v := unwrapSecret(m[pEnvironment]); v.IsObject() {
		for k, e := range v.ObjectValue() {
			if e = unwrapSecret(e); e.IsString() {
				in.environment[string(k)] = e.StringValue()
			}
		}
	}
	return in, nil
}

func unwrapSecret(v resource.PropertyValue) resource.PropertyValue {
	for v.IsSecret() {
		v = v.SecretValue().Element
	}
	return v
}

// stripSecrets removes secret markers at every depth (for secret-insensitive comparison).
func stripSecrets(v resource.PropertyValue) resource.PropertyValue {
	v = unwrapSecret(v)
	switch {
	case v.IsArray():
		arr := make([]resource.PropertyValue, len(v.ArrayValue()))
		for i, e := range v.ArrayValue() {
			arr[i] = stripSecrets(e)
		}
		return resource.NewArrayProperty(arr)
	case v.IsObject():
		obj := resource.PropertyMap{}
		for k, e := range v.ObjectValue() {
			obj[k] = stripSecrets(e)
		}
		return resource.NewObjectProperty(obj)
	}
	return v
}
