package samtemplate

import (
	"fmt"
	"slices"
	"strings"
)

// SQS defaults, used when a queue leaves the attribute out.
const (
	DefaultVisibilityTimeout      = 30
	DefaultMessageRetentionPeriod = 345600
	DefaultMaximumMessageSize     = 262144
)

// Queue is an AWS::SQS::Queue.
type Queue struct {
	LogicalID string
	Condition string
	// QueueName is the literal QueueName, empty when CloudFormation names it.
	QueueName string
	// SqsManagedSSE is SqsManagedSseEnabled; KMSKey is KmsMasterKeyId.
	SqsManagedSSE bool
	KMSKey        Value
	// Seconds; the SQS defaults when unset.
	VisibilityTimeout             int
	MessageRetentionPeriod        int
	DelaySeconds                  int
	ReceiveMessageWaitTimeSeconds int
	MaximumMessageSize            int
	FIFO                          bool
	ContentBasedDeduplication     bool
	// DeadLetterTarget is the redrive policy's deadLetterTargetArn as
	// written; DeadLetterQueue is the logical id it names (!GetAtt X.Arn),
	// empty without a redrive policy or for a queue outside the template.
	DeadLetterTarget Value
	DeadLetterQueue  string
	MaxReceiveCount  int
}

// Function is an AWS::Serverless::Function with Globals merged.
type Function struct {
	LogicalID string
	// Literal properties; empty when absent or not a literal.
	Runtime       string
	Handler       string
	CodeURI       string
	Tracing       string
	Architectures []string
	// BuildMethod is Metadata.BuildMethod (makefile: sam build runs
	// build-<LogicalId>, the id in the function's own template).
	BuildMethod string
	// BuildTarget is that Makefile target: build-Function for every
	// partner stack's function, so one build serves them all.
	BuildTarget string
	// Application is the nested application the function comes from, empty
	// for the template's own functions.
	Application string
	// Timeout in seconds (SAM default 3) and MemorySize in MB (default 128).
	Timeout    int
	MemorySize int
	// Environment holds Environment.Variables.
	Environment map[string]Value
	// SQSEvents are the SQS event sources; OtherEvents names any other kind.
	SQSEvents   []SQSEvent
	OtherEvents []string
	// Role is the logical id of the AWS::IAM::Role in Role (!GetAtt X.Arn),
	// empty when SAM generates the role from Policies.
	Role string
	// Statements are every IAM statement the function's role carries:
	// the role's inline policies, AWS::IAM::Policy resources attached to
	// it, or the inline documents of SAM Policies.
	Statements []Statement
	// ManagedPolicies are managed policy ARNs attached to the role (or plain
	// names in SAM Policies); PolicyTemplates are SAM policy templates used.
	ManagedPolicies []Value
	PolicyTemplates []string
	// LogGroup is the logical id of the function's AWS::Logs::LogGroup.
	LogGroup string
	// ReservedConcurrency is ReservedConcurrentExecutions, 0 when unset.
	ReservedConcurrency int
}

// SQSEvent is one SQS event source of a function.
type SQSEvent struct {
	Name string
	// Queue is the logical id of the source queue (!GetAtt X.Arn).
	Queue string
	// BatchSize (default 10), MaximumBatchingWindow in seconds (default 0),
	// MaximumConcurrency (0 = no cap).
	BatchSize             int
	MaximumBatchingWindow int
	MaximumConcurrency    int
	FunctionResponseTypes []string
	Enabled               bool
}

// Statement is one IAM policy statement.
type Statement struct {
	Sid    string
	Effect string
	// Actions are the Action entries; NotAction / NotResource are flagged
	// because they grant everything they do not list.
	Actions     []string
	Resources   []Value
	Principal   Value
	Condition   any
	NotAction   bool
	NotResource bool
}

// Role is an AWS::IAM::Role.
type Role struct {
	LogicalID string
	// TrustedServices are the service principals of the trust policy.
	TrustedServices []string
	Statements      []Statement
	ManagedPolicies []Value
}

// LogGroup is an AWS::Logs::LogGroup.
type LogGroup struct {
	LogicalID string
	Name      Value
	// RetentionInDays is 0 when unset (kept forever).
	RetentionInDays int
}

// SSMParameter is an AWS::SSM::Parameter.
type SSMParameter struct {
	LogicalID   string
	Name        Value
	Type        string
	Value       Value
	Description string
}

// Topic is an AWS::SNS::Topic.
type Topic struct {
	LogicalID string
	KMSKey    Value
}

// Subscription is an AWS::SNS::Subscription.
type Subscription struct {
	LogicalID string
	Condition string
	// Topic is the logical id of the topic (!Ref X).
	Topic    string
	Protocol Value
	Endpoint Value
}

// KMSKey is an AWS::KMS::Key.
type KMSKey struct {
	LogicalID         string
	EnableKeyRotation bool
	Statements        []Statement
}

// Dimension is a CloudWatch metric dimension.
type Dimension struct {
	Name  string
	Value Value
}

// Metric names one CloudWatch metric.
type Metric struct {
	Namespace  string
	MetricName string
	Dimensions []Dimension
}

// MetricQuery is one entry of an alarm's Metrics (metric math).
type MetricQuery struct {
	ID         string
	Label      string
	Expression string
	// ReturnData defaults to true, as in CloudWatch.
	ReturnData bool
	// Metric, Period, Stat and Unit are the MetricStat, nil Metric for an expression.
	Metric *Metric
	Period int
	Stat   string
	Unit   string
}

// Alarm is an AWS::CloudWatch::Alarm.
type Alarm struct {
	LogicalID   string
	Name        Value
	Description string
	// Metric, Statistic / ExtendedStatistic and Period describe a
	// single-metric alarm; Metrics a metric-math alarm.
	Metric            *Metric
	Statistic         string
	ExtendedStatistic string
	Period            int
	Metrics           []MetricQuery
	// EvaluationPeriods and DatapointsToAlarm (defaults to EvaluationPeriods).
	EvaluationPeriods  int
	DatapointsToAlarm  int
	Threshold          float64
	ComparisonOperator string
	// TreatMissingData defaults to "missing", as in CloudWatch.
	TreatMissingData        string
	AlarmActions            []Value
	OKActions               []Value
	InsufficientDataActions []Value
}

// Dashboard is an AWS::CloudWatch::Dashboard.
type Dashboard struct {
	LogicalID string
	Name      Value
	Body      Value
	t         *Template
}

// build derives the typed views from Resources with the current parameter values.
func (t *Template) build() error {
	t.Queues = map[string]*Queue{}
	t.Functions = map[string]*Function{}
	t.Roles = map[string]*Role{}
	t.LogGroups = map[string]*LogGroup{}
	t.SSMParameters = map[string]*SSMParameter{}
	t.Topics = map[string]*Topic{}
	t.Subscriptions = map[string]*Subscription{}
	t.Alarms = map[string]*Alarm{}
	t.Dashboards = map[string]*Dashboard{}
	t.KMSKeys = map[string]*KMSKey{}
	if err := t.validateBindings(); err != nil {
		return err
	}
	// Roles first: functions copy their statements.
	for _, id := range t.ResourcesOfType(TypeRole) {
		role, err := t.buildRole(t.Resources[id])
		if err != nil {
			return err
		}
		t.Roles[id] = role
	}
	for _, id := range slices.Concat(t.ResourcesOfType(TypeIAMPolicy), t.ResourcesOfType(TypeManagedPol)) {
		if err := t.attachPolicy(t.Resources[id]); err != nil {
			return err
		}
	}
	for id, r := range t.Resources {
		var err error
		switch r.Type {
		case TypeQueue:
			t.Queues[id], err = t.buildQueue(r)
		case TypeLogGroup:
			t.LogGroups[id], err = t.buildLogGroup(r)
		case TypeSSMParameter:
			t.SSMParameters[id] = &SSMParameter{LogicalID: id, Name: r.Prop("Name"), Type: literal(r.Properties["Type"]),
				Value: r.Prop("Value"), Description: literal(r.Properties["Description"])}
		case TypeTopic:
			t.Topics[id] = &Topic{LogicalID: id, KMSKey: r.Prop("KmsMasterKeyId")}
		case TypeSubscription:
			t.Subscriptions[id] = &Subscription{LogicalID: id, Condition: r.Condition, Topic: r.Prop("TopicArn").Target().Name,
				Protocol: r.Prop("Protocol"), Endpoint: r.Prop("Endpoint")}
		case TypeAlarm:
			t.Alarms[id], err = t.buildAlarm(r)
		case TypeDashboard:
			t.Dashboards[id] = &Dashboard{LogicalID: id, Name: r.Prop("DashboardName"), Body: r.Prop("DashboardBody"), t: t}
		case TypeKMSKey:
			t.KMSKeys[id], err = t.buildKMSKey(r)
		}
		if err != nil {
			return err
		}
	}
	for _, id := range t.ResourcesOfType(TypeFunction) {
		f, err := t.buildFunction(t.Resources[id])
		if err != nil {
			return err
		}
		t.Functions[id] = f
	}
	return nil
}

func literal(v any) string {
	s, _ := v.(string)
	return s
}

// intProp resolves an integer property, def when absent.
func intProp(r *Resource, props map[string]any, name string, def int) (int, error) {
	v, ok := props[name]
	if !ok || v == nil {
		return def, nil
	}
	n, err := Value{Expr: v, t: r.t}.Int()
	if err != nil {
		return 0, fmt.Errorf("%s %s: %s: %w", r.Type, r.LogicalID, name, err)
	}
	return n, nil
}

func boolProp(r *Resource, props map[string]any, name string, def bool) (bool, error) {
	v, ok := props[name]
	if !ok || v == nil {
		return def, nil
	}
	s, err := Value{Expr: v, t: r.t}.Text()
	if err != nil {
		return false, fmt.Errorf("%s %s: %s: %w", r.Type, r.LogicalID, name, err)
	}
	switch strings.ToLower(s) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("%s %s: %s: %q is not a boolean", r.Type, r.LogicalID, name, s)
}

func (t *Template) buildQueue(r *Resource) (*Queue, error) {
	q := &Queue{LogicalID: r.LogicalID, Condition: r.Condition, QueueName: literal(r.Properties["QueueName"]), KMSKey: r.Prop("KmsMasterKeyId"), DeadLetterTarget: Value{t: t}}
	p := r.Properties
	var err error
	for _, f := range []struct {
		name string
		dst  *int
		def  int
	}{
		{"VisibilityTimeout", &q.VisibilityTimeout, DefaultVisibilityTimeout},
		{"MessageRetentionPeriod", &q.MessageRetentionPeriod, DefaultMessageRetentionPeriod},
		{"DelaySeconds", &q.DelaySeconds, 0},
		{"ReceiveMessageWaitTimeSeconds", &q.ReceiveMessageWaitTimeSeconds, 0},
		{"MaximumMessageSize", &q.MaximumMessageSize, DefaultMaximumMessageSize},
	} {
		if *f.dst, err = intProp(r, p, f.name, f.def); err != nil {
			return nil, err
		}
	}
	if q.SqsManagedSSE, err = boolProp(r, p, "SqsManagedSseEnabled", false); err != nil {
		return nil, err
	}
	if q.FIFO, err = boolProp(r, p, "FifoQueue", false); err != nil {
		return nil, err
	}
	if q.ContentBasedDeduplication, err = boolProp(r, p, "ContentBasedDeduplication", false); err != nil {
		return nil, err
	}
	if rp, ok := p["RedrivePolicy"]; ok {
		m, isMap := rp.(map[string]any)
		if !isMap || isIntrinsic(m) {
			return nil, fmt.Errorf("%s %s: RedrivePolicy must be written as a mapping", r.Type, r.LogicalID)
		}
		q.DeadLetterTarget = Value{Expr: m["deadLetterTargetArn"], t: t}
		if tg := q.DeadLetterTarget.Target(); tg.Kind == TargetResource && tg.Attribute == "Arn" {
			q.DeadLetterQueue = tg.Name
		}
		if q.MaxReceiveCount, err = intProp(r, m, "maxReceiveCount", 0); err != nil {
			return nil, err
		}
		if q.MaxReceiveCount < 1 {
			return nil, fmt.Errorf("%s %s: RedrivePolicy has no maxReceiveCount", r.Type, r.LogicalID)
		}
	}
	return q, nil
}

func (t *Template) buildLogGroup(r *Resource) (*LogGroup, error) {
	days, err := intProp(r, r.Properties, "RetentionInDays", 0)
	if err != nil {
		return nil, err
	}
	return &LogGroup{LogicalID: r.LogicalID, Name: r.Prop("LogGroupName"), RetentionInDays: days}, nil
}

func (t *Template) parseStatements(owner string, doc any) ([]Statement, error) {
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: policy document is not a mapping", owner)
	}
	raw := m["Statement"]
	list, ok := raw.([]any)
	if !ok {
		if sm, isMap := raw.(map[string]any); isMap {
			list = []any{sm}
		} else {
			return nil, fmt.Errorf("%s: policy document has no Statement list", owner)
		}
	}
	var out []Statement
	for i, x := range list {
		sm, ok := x.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: statement %d is not a mapping", owner, i)
		}
		st := Statement{Sid: literal(sm["Sid"]), Effect: literal(sm["Effect"]), Principal: Value{Expr: sm["Principal"], t: t}, Condition: sm["Condition"]}
		actions, act := sm["Action"], "Action"
		if na, ok := sm["NotAction"]; ok {
			actions, act, st.NotAction = na, "NotAction", true
		}
		switch a := actions.(type) {
		case string:
			st.Actions = []string{a}
		case []any:
			for _, y := range a {
				s, isStr := y.(string)
				if !isStr {
					return nil, fmt.Errorf("%s: statement %d: %s entry is not literal text", owner, i, act)
				}
				st.Actions = append(st.Actions, s)
			}
		default:
			return nil, fmt.Errorf("%s: statement %d: %s is missing or not literal", owner, i, act)
		}
		res := sm["Resource"]
		if nr, ok := sm["NotResource"]; ok {
			res, st.NotResource = nr, true
		}
		if list, ok := res.([]any); ok {
			for _, y := range list {
				st.Resources = append(st.Resources, Value{Expr: y, t: t})
			}
		} else if res != nil {
			st.Resources = []Value{{Expr: res, t: t}}
		}
		out = append(out, st)
	}
	return out, nil
}

func (t *Template) buildRole(r *Resource) (*Role, error) {
	owner := r.Type + " " + r.LogicalID
	role := &Role{LogicalID: r.LogicalID}
	trust, err := t.parseStatements(owner+" AssumeRolePolicyDocument", r.Properties["AssumeRolePolicyDocument"])
	if err != nil {
		return nil, err
	}
	for _, st := range trust {
		if pm, ok := st.Principal.Expr.(map[string]any); ok {
			switch s := pm["Service"].(type) {
			case string:
				role.TrustedServices = append(role.TrustedServices, s)
			case []any:
				for _, x := range s {
					role.TrustedServices = append(role.TrustedServices, literal(x))
				}
			}
		}
	}
	if pols, ok := r.Properties["Policies"].([]any); ok {
		for i, p := range pols {
			pm, _ := p.(map[string]any)
			sts, err := t.parseStatements(fmt.Sprintf("%s policy %d", owner, i), pm["PolicyDocument"])
			if err != nil {
				return nil, err
			}
			role.Statements = append(role.Statements, sts...)
		}
	}
	if arns, ok := r.Properties["ManagedPolicyArns"].([]any); ok {
		for _, a := range arns {
			role.ManagedPolicies = append(role.ManagedPolicies, Value{Expr: a, t: t})
		}
	}
	return role, nil
}

// attachPolicy adds an AWS::IAM::Policy or ManagedPolicy to the roles it names.
func (t *Template) attachPolicy(r *Resource) error {
	sts, err := t.parseStatements(r.Type+" "+r.LogicalID, r.Properties["PolicyDocument"])
	if err != nil {
		return err
	}
	roles, _ := r.Properties["Roles"].([]any)
	for _, x := range roles {
		tg := Value{Expr: x, t: t}.Target()
		if role, ok := t.Roles[tg.Name]; ok && tg.Kind == TargetResource {
			role.Statements = append(role.Statements, sts...)
		}
	}
	return nil
}

func (t *Template) buildKMSKey(r *Resource) (*KMSKey, error) {
	k := &KMSKey{LogicalID: r.LogicalID}
	var err error
	if k.EnableKeyRotation, err = boolProp(r, r.Properties, "EnableKeyRotation", false); err != nil {
		return nil, err
	}
	if k.Statements, err = t.parseStatements(r.Type+" "+r.LogicalID+" KeyPolicy", r.Properties["KeyPolicy"]); err != nil {
		return nil, err
	}
	return k, nil
}

func (t *Template) buildFunction(r *Resource) (*Function, error) {
	p := r.Properties
	where := r.Type + " " + r.LogicalID
	f := &Function{
		LogicalID: r.LogicalID, Runtime: literal(p["Runtime"]), Handler: literal(p["Handler"]),
		CodeURI: literal(p["CodeUri"]), Tracing: literal(p["Tracing"]), BuildMethod: literal(r.Metadata["BuildMethod"]),
		Environment: map[string]Value{}, Application: r.Application,
	}
	if f.BuildMethod == "makefile" {
		f.BuildTarget = "build-" + r.LogicalID
		if r.ChildID != "" {
			f.BuildTarget = "build-" + r.ChildID
		}
	}
	if a, ok := p["Architectures"].([]any); ok {
		for _, x := range a {
			f.Architectures = append(f.Architectures, literal(x))
		}
	}
	var err error
	if f.Timeout, err = intProp(r, p, "Timeout", 3); err != nil {
		return nil, err
	}
	if f.MemorySize, err = intProp(r, p, "MemorySize", 128); err != nil {
		return nil, err
	}
	if f.ReservedConcurrency, err = intProp(r, p, "ReservedConcurrentExecutions", 0); err != nil {
		return nil, err
	}
	if env, ok := p["Environment"].(map[string]any); ok {
		vars, _ := env["Variables"].(map[string]any)
		for k, v := range vars {
			expr, keep, err := t.chooseIf(v)
			if err != nil {
				return nil, fmt.Errorf("%s: environment %s: %w", where, k, err)
			}
			if keep {
				f.Environment[k] = Value{Expr: expr, t: t}
			}
		}
	}
	if err := t.functionEvents(r, f); err != nil {
		return nil, err
	}
	if err := t.functionPolicies(r, f); err != nil {
		return nil, err
	}
	if lc, ok := p["LoggingConfig"].(map[string]any); ok {
		if tg := (Value{Expr: lc["LogGroup"], t: t}).Target(); tg.Kind == TargetResource && t.LogGroups[tg.Name] != nil {
			f.LogGroup = tg.Name
		}
	}
	if f.LogGroup == "" {
		// The /aws/lambda/<function name> convention: a log group whose name refers to the function.
		for id, lg := range t.LogGroups {
			if slices.Contains(lg.Name.References(), r.LogicalID) {
				f.LogGroup = id
			}
		}
	}
	if f.Role == "" && p["Role"] != nil {
		return nil, fmt.Errorf("%s: Role must be !GetAtt <role in this template>.Arn", where)
	}
	return f, nil
}

// chooseIf resolves a top-level Fn::If with the current parameter values
// (conditions need nothing else), so a variable set only under a condition
// reads as its chosen value; keep is false when that is AWS::NoValue.
func (t *Template) chooseIf(expr any) (any, bool, error) {
	for {
		m, ok := expr.(map[string]any)
		if !ok || len(m) != 1 {
			return expr, true, nil
		}
		if ref, isRef := m["Ref"].(string); isRef && ref == "AWS::NoValue" {
			return nil, false, nil
		}
		list, isIf := m["Fn::If"].([]any)
		if !isIf || len(list) != 3 {
			return expr, true, nil
		}
		c, err := t.Condition(literal(list[0]))
		if err != nil {
			return nil, false, err
		}
		if c {
			expr = list[1]
		} else {
			expr = list[2]
		}
	}
}

func (t *Template) functionEvents(r *Resource, f *Function) error {
	events, _ := r.Properties["Events"].(map[string]any)
	names := make([]string, 0, len(events))
	for name := range events {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		ev, _ := events[name].(map[string]any)
		typ := literal(ev["Type"])
		if typ != "SQS" {
			f.OtherEvents = append(f.OtherEvents, name+" ("+typ+")")
			continue
		}
		props, _ := ev["Properties"].(map[string]any)
		er := &Resource{LogicalID: r.LogicalID + " event " + name, Type: r.Type, t: t}
		e := SQSEvent{Name: name}
		tg := Value{Expr: props["Queue"], t: t}.Target()
		if tg.Kind != TargetResource || tg.Attribute != "Arn" {
			return fmt.Errorf("%s %s: event %s: Queue must be !GetAtt <queue>.Arn", r.Type, r.LogicalID, name)
		}
		e.Queue = tg.Name
		var err error
		if e.BatchSize, err = intProp(er, props, "BatchSize", 10); err != nil {
			return err
		}
		if e.MaximumBatchingWindow, err = intProp(er, props, "MaximumBatchingWindowInSeconds", 0); err != nil {
			return err
		}
		if e.Enabled, err = boolProp(er, props, "Enabled", true); err != nil {
			return err
		}
		if sc, ok := props["ScalingConfig"].(map[string]any); ok {
			if e.MaximumConcurrency, err = intProp(er, sc, "MaximumConcurrency", 0); err != nil {
				return err
			}
		}
		if frt, ok := props["FunctionResponseTypes"].([]any); ok {
			for _, x := range frt {
				e.FunctionResponseTypes = append(e.FunctionResponseTypes, literal(x))
			}
		}
		f.SQSEvents = append(f.SQSEvents, e)
	}
	return nil
}

func (t *Template) functionPolicies(r *Resource, f *Function) error {
	if role := (Value{Expr: r.Properties["Role"], t: t}).Target(); role.Kind == TargetResource && role.Attribute == "Arn" {
		if rr, ok := t.Roles[role.Name]; ok {
			f.Role = role.Name
			f.Statements = slices.Clone(rr.Statements)
			f.ManagedPolicies = slices.Clone(rr.ManagedPolicies)
		}
	}
	var pols []any
	switch p := r.Properties["Policies"].(type) {
	case string:
		pols = []any{p}
	case map[string]any:
		pols = []any{p}
	case []any:
		pols = p
	}
	for i, p := range pols {
		switch x := p.(type) {
		case string:
			f.ManagedPolicies = append(f.ManagedPolicies, Value{Expr: x, t: t})
		case map[string]any:
			if _, ok := x["Statement"]; ok {
				sts, err := t.parseStatements(fmt.Sprintf("%s %s Policies %d", r.Type, r.LogicalID, i), x)
				if err != nil {
					return err
				}
				f.Statements = append(f.Statements, sts...)
			} else if isIntrinsic(x) {
				f.ManagedPolicies = append(f.ManagedPolicies, Value{Expr: x, t: t})
			} else {
				for name := range x {
					f.PolicyTemplates = append(f.PolicyTemplates, name)
				}
			}
		}
	}
	return nil
}

func (t *Template) buildAlarm(r *Resource) (*Alarm, error) {
	p := r.Properties
	a := &Alarm{
		LogicalID: r.LogicalID, Name: r.Prop("AlarmName"), Description: literal(p["AlarmDescription"]),
		Statistic: literal(p["Statistic"]), ExtendedStatistic: literal(p["ExtendedStatistic"]),
		ComparisonOperator: literal(p["ComparisonOperator"]), TreatMissingData: literal(p["TreatMissingData"]),
		AlarmActions: t.values(p["AlarmActions"]), OKActions: t.values(p["OKActions"]),
		InsufficientDataActions: t.values(p["InsufficientDataActions"]),
	}
	if a.TreatMissingData == "" {
		a.TreatMissingData = "missing"
	}
	if ns, mn := literal(p["Namespace"]), literal(p["MetricName"]); mn != "" {
		a.Metric = &Metric{Namespace: ns, MetricName: mn, Dimensions: t.dimensions(p["Dimensions"])}
	}
	var err error
	if a.Period, err = intProp(r, p, "Period", 0); err != nil {
		return nil, err
	}
	if a.EvaluationPeriods, err = intProp(r, p, "EvaluationPeriods", 0); err != nil {
		return nil, err
	}
	if a.DatapointsToAlarm, err = intProp(r, p, "DatapointsToAlarm", a.EvaluationPeriods); err != nil {
		return nil, err
	}
	th, err := Value{Expr: p["Threshold"], t: t}.Float()
	if err != nil {
		return nil, fmt.Errorf("%s %s: Threshold: %w", r.Type, r.LogicalID, err)
	}
	a.Threshold = th
	metrics, _ := p["Metrics"].([]any)
	for i, x := range metrics {
		m, _ := x.(map[string]any)
		q := MetricQuery{ID: literal(m["Id"]), Label: literal(m["Label"]), Expression: literal(m["Expression"]), ReturnData: true}
		mr := &Resource{LogicalID: fmt.Sprintf("%s Metrics[%d]", r.LogicalID, i), Type: r.Type, t: t}
		if q.ReturnData, err = boolProp(mr, m, "ReturnData", true); err != nil {
			return nil, err
		}
		if ms, ok := m["MetricStat"].(map[string]any); ok {
			mm, _ := ms["Metric"].(map[string]any)
			q.Metric = &Metric{Namespace: literal(mm["Namespace"]), MetricName: literal(mm["MetricName"]), Dimensions: t.dimensions(mm["Dimensions"])}
			q.Stat, q.Unit = literal(ms["Stat"]), literal(ms["Unit"])
			if q.Period, err = intProp(mr, ms, "Period", 0); err != nil {
				return nil, err
			}
		}
		if q.Metric == nil && q.Expression == "" {
			return nil, fmt.Errorf("%s %s: Metrics[%d] has neither MetricStat nor Expression", r.Type, r.LogicalID, i)
		}
		a.Metrics = append(a.Metrics, q)
	}
	if (a.Metric == nil) == (len(a.Metrics) == 0) {
		return nil, fmt.Errorf("%s %s: needs exactly one of MetricName or Metrics", r.Type, r.LogicalID)
	}
	return a, nil
}

func (t *Template) values(v any) []Value {
	list, _ := v.([]any)
	out := make([]Value, 0, len(list))
	for _, x := range list {
		out = append(out, Value{Expr: x, t: t})
	}
	return out
}

func (t *Template) dimensions(v any) []Dimension {
	list, _ := v.([]any)
	out := make([]Dimension, 0, len(list))
	for _, x := range list {
		m, _ := x.(map[string]any)
		out = append(out, Dimension{Name: literal(m["Name"]), Value: Value{Expr: m["Value"], t: t}})
	}
	return out
}
