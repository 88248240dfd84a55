// Package localstack creates a SAM template's queues and SSM parameters in
// a local AWS (moto) and resolves the template's references to them: the
// side effects of `make run` and the tests, kept out of the template model
// (samtemplate), which only reads.
package localstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"gitlab.com/gitlab-org/secret-detection/partner-token-verification/internal/dev/samtemplate"
)

// Queue is a queue created by Apply.
type Queue struct {
	LogicalID string
	Name      string
	URL       string
	ARN       string
}

// Stack is what Apply created: the local stand-in for a deployed stack,
// able to resolve the template's references to local resources.
type Stack struct {
	// Template is the template the stack was created from.
	Template *samtemplate.Template
	// Prefix starts every local queue name; StackName is the value of
	// AWS::StackName locally (the prefix without trailing separators).
	Prefix    string
	StackName string
	Region    string
	// Queues by logical id.
	Queues map[string]Queue
	// Parameters maps SSM parameter logical ids to their names.
	Parameters map[string]string
	ssmValues  map[string]string
}

// Scope resolves template references to the local resources.
func (s *Stack) Scope() samtemplate.Scope {
	return samtemplate.Scope{
		Pseudo: samtemplate.Pseudo(s.StackName, s.Region, samtemplate.LocalAccountID),
		Resource: func(id, attr string) (string, error) {
			if q, ok := s.Queues[id]; ok {
				switch attr {
				case "", "QueueUrl":
					return q.URL, nil
				case "Arn":
					return q.ARN, nil
				case "QueueName":
					return q.Name, nil
				}
				return "", fmt.Errorf("queue attribute %s: %w", attr, samtemplate.ErrUnresolvable)
			}
			if name, ok := s.Parameters[id]; ok {
				switch attr {
				case "":
					return name, nil
				case "Value":
					return s.ssmValues[id], nil
				}
				return "", fmt.Errorf("parameter attribute %s: %w", attr, samtemplate.ErrUnresolvable)
			}
			return "", fmt.Errorf("not created locally: %w", samtemplate.ErrUnresolvable)
		},
	}
}

// localPrefix keeps queue names within what SQS accepts.
var localPrefix = regexp.MustCompile(`^[A-Za-z0-9_-]*$`)

// queueProperties are the AWS::SQS::Queue properties Apply
// reproduces; any other one is an error, so the local stack never
// silently differs from the template. Tags are left out on purpose: they
// change no behaviour.
var queueProperties = []string{
	"QueueName", "VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds",
	"ReceiveMessageWaitTimeSeconds", "MaximumMessageSize", "SqsManagedSseEnabled",
	"FifoQueue", "ContentBasedDeduplication", "RedrivePolicy", "Tags",
}

// Apply creates the template's queues (dead-letter queues first, with
// redrive policies, visibility timeouts, retention and encryption setting
// as attributes) and its SSM parameters in the AWS that cfg points at
// (moto for tests and `make run`). Queue names are prefix + logical id.
// It is idempotent: existing queues get their attributes set again, and an
// existing parameter keeps its value, as a deployed one keeps what the
// `feature` command wrote.
func Apply(ctx context.Context, t *samtemplate.Template, cfg aws.Config, prefix string) (*Stack, error) {
	if !localPrefix.MatchString(prefix) {
		return nil, fmt.Errorf("apply local: prefix %q: only letters, digits, - and _", prefix)
	}
	stackName := strings.TrimRight(prefix, "-_")
	if stackName == "" {
		stackName = "local"
	}
	ls := &Stack{Template: t, Prefix: prefix, StackName: stackName, Region: cfg.Region,
		Queues: map[string]Queue{}, Parameters: map[string]string{}, ssmValues: map[string]string{}}
	order, err := queueOrder(t)
	if err != nil {
		return nil, fmt.Errorf("apply local: %w", err)
	}
	sqsc := sqs.NewFromConfig(cfg)
	for _, id := range order {
		if err := createQueue(ctx, t, sqsc, ls, id); err != nil {
			return nil, fmt.Errorf("apply local: queue %s: %w", id, err)
		}
	}
	ssmc := ssm.NewFromConfig(cfg)
	for _, id := range t.ResourcesOfType(samtemplate.TypeSSMParameter) {
		if ok, err := exists(t, id); err != nil || !ok {
			if err != nil {
				return nil, fmt.Errorf("apply local: parameter %s: %w", id, err)
			}
			continue
		}
		if err := putParameter(ctx, t, ssmc, ls, id); err != nil {
			return nil, fmt.Errorf("apply local: parameter %s: %w", id, err)
		}
	}
	return ls, nil
}

// exists evaluates a resource's Condition.
func exists(t *samtemplate.Template, id string) (bool, error) {
	r := t.Resources[id]
	if r.Condition == "" {
		return true, nil
	}
	return t.Condition(r.Condition)
}

// queueOrder lists the queues to create so every dead-letter queue comes
// before the queues that redrive to it.
func queueOrder(t *samtemplate.Template) ([]string, error) {
	var ids []string
	for _, id := range t.ResourcesOfType(samtemplate.TypeQueue) {
		ok, err := exists(t, id)
		if err != nil {
			return nil, fmt.Errorf("queue %s: %w", id, err)
		}
		if ok {
			ids = append(ids, id)
		}
	}
	done := map[string]bool{}
	var order []string
	for len(order) < len(ids) {
		progress := false
		for _, id := range ids {
			q := t.Queues[id]
			if done[id] {
				continue
			}
			if q.DeadLetterTarget.IsSet() {
				if q.DeadLetterQueue == "" {
					return nil, fmt.Errorf("queue %s: dead-letter target is not a queue of this template", id)
				}
				if !slices.Contains(ids, q.DeadLetterQueue) {
					return nil, fmt.Errorf("queue %s: dead-letter queue %s is not created", id, q.DeadLetterQueue)
				}
				if !done[q.DeadLetterQueue] {
					continue
				}
			}
			done[id] = true
			order = append(order, id)
			progress = true
		}
		if !progress {
			return nil, errors.New("redrive policies form a cycle")
		}
	}
	return order, nil
}

func queueAttributes(t *samtemplate.Template, q *samtemplate.Queue, ls *Stack) (map[string]string, error) {
	for name := range t.Resources[q.LogicalID].Properties {
		if !slices.Contains(queueProperties, name) {
			return nil, fmt.Errorf("property %s has no local translation", name)
		}
	}
	attrs := map[string]string{
		string(sqstypes.QueueAttributeNameVisibilityTimeout):             strconv.Itoa(q.VisibilityTimeout),
		string(sqstypes.QueueAttributeNameMessageRetentionPeriod):        strconv.Itoa(q.MessageRetentionPeriod),
		string(sqstypes.QueueAttributeNameDelaySeconds):                  strconv.Itoa(q.DelaySeconds),
		string(sqstypes.QueueAttributeNameReceiveMessageWaitTimeSeconds): strconv.Itoa(q.ReceiveMessageWaitTimeSeconds),
		string(sqstypes.QueueAttributeNameMaximumMessageSize):            strconv.Itoa(q.MaximumMessageSize),
		string(sqstypes.QueueAttributeNameSqsManagedSseEnabled):          strconv.FormatBool(q.SqsManagedSSE),
	}
	if q.FIFO {
		attrs[string(sqstypes.QueueAttributeNameFifoQueue)] = "true"
		attrs[string(sqstypes.QueueAttributeNameContentBasedDeduplication)] = strconv.FormatBool(q.ContentBasedDeduplication)
	}
	if q.DeadLetterQueue != "" {
		dlq, ok := ls.Queues[q.DeadLetterQueue]
		if !ok {
			return nil, fmt.Errorf("dead-letter queue %s not created yet", q.DeadLetterQueue)
		}
		rp, err := json.Marshal(map[string]any{"deadLetterTargetArn": dlq.ARN, "maxReceiveCount": q.MaxReceiveCount})
		if err != nil {
			return nil, err
		}
		attrs[string(sqstypes.QueueAttributeNameRedrivePolicy)] = string(rp)
	}
	return attrs, nil
}

func createQueue(ctx context.Context, t *samtemplate.Template, c *sqs.Client, ls *Stack, id string) error {
	q := t.Queues[id]
	attrs, err := queueAttributes(t, q, ls)
	if err != nil {
		return err
	}
	name := ls.Prefix + id
	if q.QueueName != "" {
		name = ls.Prefix + q.QueueName
	}
	if q.FIFO && !strings.HasSuffix(name, ".fifo") {
		name += ".fifo"
	}
	if len(name) > 80 {
		return fmt.Errorf("name %q is longer than SQS's 80 characters", name)
	}
	var url string
	out, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	switch {
	case err == nil:
		url = aws.ToString(out.QueueUrl)
	case isQueueExists(err):
		got, gerr := c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
		if gerr != nil {
			return fmt.Errorf("get url of existing queue: %w", gerr)
		}
		url = aws.ToString(got.QueueUrl)
		settable := maps.Clone(attrs)
		delete(settable, string(sqstypes.QueueAttributeNameFifoQueue))
		if _, err := c.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(url), Attributes: settable}); err != nil {
			return fmt.Errorf("set attributes of existing queue: %w", err)
		}
	default:
		return fmt.Errorf("create: %w", err)
	}
	ga, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return fmt.Errorf("get arn: %w", err)
	}
	arn := ga.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	if arn == "" {
		return errors.New("get arn: no QueueArn attribute")
	}
	ls.Queues[id] = Queue{LogicalID: id, Name: name, URL: url, ARN: arn}
	return nil
}

func isQueueExists(err error) bool {
	var exists *sqstypes.QueueNameExists
	if errors.As(err, &exists) {
		return true
	}
	// Older servers answer with the Query protocol's code.
	return strings.Contains(err.Error(), "QueueAlreadyExists")
}

func putParameter(ctx context.Context, t *samtemplate.Template, c *ssm.Client, ls *Stack, id string) error {
	p := t.SSMParameters[id]
	scope := ls.Scope()
	name, err := p.Name.Resolve(scope)
	if err != nil {
		return fmt.Errorf("name: %w", err)
	}
	value, err := p.Value.Resolve(scope)
	if err != nil {
		return fmt.Errorf("value: %w", err)
	}
	typ := ssmtypes.ParameterType(p.Type)
	if typ != ssmtypes.ParameterTypeString && typ != ssmtypes.ParameterTypeStringList {
		return fmt.Errorf("type %q: CloudFormation creates only String and StringList", p.Type)
	}
	in := &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(value), Type: typ, Overwrite: aws.Bool(false)}
	if p.Description != "" {
		in.Description = aws.String(p.Description)
	}
	_, err = c.PutParameter(ctx, in)
	var exists *ssmtypes.ParameterAlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("put: %w", err)
	}
	ls.Parameters[id] = name
	ls.ssmValues[id] = value
	return nil
}

// FunctionEnv resolves a function's environment variables against the
// local stack (queue URLs, the parameter's name, parameter values), then
// applies overrides, which replace or add variables (AWS_ENDPOINT_URL,
// partner endpoints pointing at the doubles, a short cache TTL for a test).
func (s *Stack) FunctionEnv(logicalID string, overrides map[string]string) (map[string]string, error) {
	f, ok := s.Template.Functions[logicalID]
	if !ok {
		return nil, fmt.Errorf("function env: no function %s in the template", logicalID)
	}
	scope := s.Scope()
	env := make(map[string]string, len(f.Environment)+len(overrides))
	for _, name := range slices.Sorted(maps.Keys(f.Environment)) {
		v, err := f.Environment[name].Resolve(scope)
		if err != nil {
			return nil, fmt.Errorf("function env %s: %s: %w", logicalID, name, err)
		}
		env[name] = v
	}
	maps.Copy(env, overrides)
	return env, nil
}
