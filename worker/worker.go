// Package worker runs Parley's Temporal worker: the conversation workflows
// and the activities they call.
package worker

import (
	"fmt"
	"log/slog"
	"parley/blobs"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"parley/activities"
	"parley/messenger"
	"parley/metrics"
	"parley/store"
	"parley/workflows"
)

// Deps are what the activities need.
type Deps struct {
	Store *store.Store
	Graph *messenger.Client
	Log   *slog.Logger
	// Blobs keeps files: what customers send, what agents upload.
	Blobs *blobs.Store
	// Waker wakes the distributor after a ledger change (nil: nobody is woken).
	Waker activities.Waker
	// Offers delivers a round's offers (New defaults it to its client).
	Offers activities.OfferDeliverer
	// PublicURL is Parley's public base URL: survey links start with it.
	PublicURL string
	// Metrics counts the offers (nil: not counted).
	Metrics *metrics.Metrics
	// MaxThrottlePause caps a throttled page's pause (0: Meta's word).
	MaxThrottlePause time.Duration
	// Health tunes the page health check and says where alerts go.
	Health activities.HealthSettings
}

// Register adds Parley's workflows and activities to a worker (or a test
// environment, which implements the same registry).
func Register(r sdkworker.Registry, d Deps) {
	r.RegisterWorkflowWithOptions(workflows.ConversationWorkflow, workflow.RegisterOptions{Name: workflows.ConversationWorkflowName})
	conv := &activities.Conversations{Store: d.Store, Blobs: d.Blobs, Log: d.Log}
	r.RegisterActivityWithOptions(conv.OpenConversation, activity.RegisterOptions{Name: activities.OpenConversationName})
	r.RegisterActivityWithOptions(conv.RecordTranscript, activity.RegisterOptions{Name: activities.RecordTranscriptName})
	r.RegisterActivityWithOptions(conv.SaveConversation, activity.RegisterOptions{Name: activities.SaveConversationName})
	r.RegisterActivityWithOptions(conv.KeepAttachments, activity.RegisterOptions{Name: activities.KeepAttachmentsName})
	send := &activities.Sender{Store: d.Store, Graph: d.Graph, Blobs: d.Blobs, Log: d.Log, PublicURL: d.PublicURL, MaxThrottlePause: d.MaxThrottlePause}
	r.RegisterActivityWithOptions(send.SendMessage, activity.RegisterOptions{Name: activities.SendMessageName})
	r.RegisterActivityWithOptions(send.MarkMessageSent, activity.RegisterOptions{Name: activities.MarkMessageSentName})
	r.RegisterActivityWithOptions(send.MarkMessageFailed, activity.RegisterOptions{Name: activities.MarkMessageFailedName})
	r.RegisterActivityWithOptions(send.MarkPageTokenInvalid, activity.RegisterOptions{Name: activities.MarkPageTokenInvalidName})
	r.RegisterActivityWithOptions(send.LoadSettings, activity.RegisterOptions{Name: activities.LoadSettingsName})
	r.RegisterActivityWithOptions(send.ControlThread, activity.RegisterOptions{Name: activities.ControlThreadName})
	// The page health check (issue 10), run by its schedule.
	r.RegisterWorkflowWithOptions(workflows.PageHealthWorkflow, workflow.RegisterOptions{Name: workflows.PageHealthWorkflowName})
	health := &activities.PageHealth{Store: d.Store, Graph: d.Graph, Log: d.Log, Settings: d.Health, Alerted: d.Metrics.PageAlert}
	r.RegisterActivityWithOptions(health.ListPagesToCheck, activity.RegisterOptions{Name: activities.ListPagesToCheckName})
	r.RegisterActivityWithOptions(health.CheckPageHealth, activity.RegisterOptions{Name: activities.CheckPageHealthName})
	r.RegisterActivityWithOptions(health.SendPageAlert, activity.RegisterOptions{Name: activities.SendPageAlertName})
	r.RegisterActivityWithOptions(send.FindSentMessage, activity.RegisterOptions{Name: activities.FindSentMessageName})
	r.RegisterActivityWithOptions(conv.UnrecordedEvents, activity.RegisterOptions{Name: activities.UnrecordedEventsName})
	r.RegisterActivityWithOptions(conv.RecordOutsideConversation, activity.RegisterOptions{Name: activities.RecordOutsideConversationName})
	rt := &activities.Routing{Store: d.Store, Waker: d.Waker, Log: d.Log, Metrics: d.Metrics}
	for name, f := range map[string]any{
		activities.RouteConversationName: rt.RouteConversation,
		activities.AcceptOfferName:       rt.AcceptOffer,
		activities.DeclineOfferName:      rt.DeclineOffer,
		activities.ClaimConversationName: rt.ClaimConversation,
		activities.HoldForWrapUpName:     rt.HoldForWrapUp,
		activities.WakeDistributorName:   rt.WakeDistributor,
		activities.QueuePlaceName:        rt.QueuePlace,
	} {
		r.RegisterActivityWithOptions(f, activity.RegisterOptions{Name: name})
	}
	cust := &activities.Customers{Store: d.Store, Graph: d.Graph, Log: d.Log}
	r.RegisterActivityWithOptions(cust.LoadProfile, activity.RegisterOptions{Name: activities.LoadProfileName})
	surveys := &activities.Surveys{Store: d.Store}
	r.RegisterActivityWithOptions(surveys.RecordSurvey, activity.RegisterOptions{Name: activities.RecordSurveyName})
	r.RegisterActivityWithOptions(surveys.RecordPreSurvey, activity.RegisterOptions{Name: activities.RecordPreSurveyName})
	pages := &activities.Pages{Store: d.Store, Log: d.Log}
	r.RegisterActivityWithOptions(pages.FlagPage, activity.RegisterOptions{Name: activities.FlagPageName})
	// ReleaseCapacity comes with it; a distributor started before it had its
	// own task queue keeps running here.
	RegisterDistributor(r, d)
}

// RegisterDistributor adds the distributor workflow and the activities it
// calls (ReleaseCapacity is the conversations' too).
func RegisterDistributor(r sdkworker.Registry, d Deps) {
	r.RegisterWorkflowWithOptions(workflows.DistributorWorkflow, workflow.RegisterOptions{Name: workflows.DistributorWorkflowName})
	rt := &activities.Routing{Store: d.Store, Waker: d.Waker, Offers: d.Offers, Log: d.Log, Metrics: d.Metrics}
	r.RegisterActivityWithOptions(rt.DistributeRound, activity.RegisterOptions{Name: activities.DistributeRoundName})
	r.RegisterActivityWithOptions(rt.DistributeAndDeliver, activity.RegisterOptions{Name: activities.DistributeAndDeliverName})
	r.RegisterActivityWithOptions(rt.ReleaseCapacity, activity.RegisterOptions{Name: activities.ReleaseCapacityName})
}

// DistributorTaskQueue is the distributor's own task queue: its workflow
// tasks never wait behind the conversations' (at 20 new conversations a
// second on two cores they waited up to 2 s on the shared queue).
func DistributorTaskQueue(taskQueue string) string { return taskQueue + "-distributor" }

// Worker polls the conversations' task queue and the distributor's.
type Worker struct {
	conversations, distributor sdkworker.Worker
}

// New builds the workers of taskQueue (and of its distributor queue) with
// everything registered.
func New(c client.Client, taskQueue string, d Deps) *Worker {
	if d.Offers == nil {
		d.Offers = &Waker{Client: c, TaskQueue: taskQueue}
	}
	// More pollers than the default 2: a conversation's start is several
	// short activities in a row, and at 20 new conversations a second two
	// pollers per kind kept tasks waiting (bench: p50 1.8 s -> 1.3 s).
	// A stopping worker lets its activities (short store transactions)
	// finish and report: an activity cut off unreported holds its
	// conversation until its start-to-close time-out (30 s), and with it,
	// say, an offer's time-out (seen in the 500-conversation test).
	conv := sdkworker.New(c, taskQueue, sdkworker.Options{MaxConcurrentWorkflowTaskPollers: 8, MaxConcurrentActivityTaskPollers: 8,
		WorkerStopTimeout: 10 * time.Second})
	Register(conv, d)
	dist := sdkworker.New(c, DistributorTaskQueue(taskQueue), sdkworker.Options{WorkerStopTimeout: 10 * time.Second})
	RegisterDistributor(dist, d)
	return &Worker{conversations: conv, distributor: dist}
}

// SetCacheSize sets how many workflows this process keeps in memory
// (config.DefaultWorkflowCacheSize says why not the SDK's 10,000). The
// cache is shared by every worker of the process and sized when the first
// one is built: call it before New.
func SetCacheSize(n int) {
	sdkworker.SetStickyWorkflowCacheSize(n)
}

// Start starts polling both task queues.
func (w *Worker) Start() error {
	if err := w.distributor.Start(); err != nil {
		return fmt.Errorf("distributor worker: %w", err)
	}
	if err := w.conversations.Start(); err != nil {
		w.distributor.Stop()
		return fmt.Errorf("conversation worker: %w", err)
	}
	return nil
}

// Stop stops both, waiting for the tasks under way.
func (w *Worker) Stop() {
	w.conversations.Stop()
	w.distributor.Stop()
}

// DevServerFlags are the `temporal server start-dev` flags: the search
// attributes registered up front; eager activity execution, which hands
// an activity to the worker in the answer to the workflow task that
// scheduled it (one matching round-trip less per activity: a new
// conversation's path to its offer runs six activities in a row); the
// transfer queue's read rate (TransferQueueMaxPollRPS); and, for a dev
// server on its SQLite file (make dev, most tests), SQLite's WAL journal
// with synchronous=NORMAL: by default each commit rewrote a rollback
// journal and synced twice, and bare SignalWithStart ran at 52/s instead
// of 142/s. A crash of the machine may lose the last commits, not the
// database; an in-memory dev server ignores both.
func DevServerFlags() []string {
	var args []string
	for _, k := range workflows.SearchAttributes() {
		args = append(args, "--search-attribute", k.GetName()+"="+searchAttributeTypeName(k.GetValueType()))
	}
	args = append(args, "--dynamic-config-value", "system.enableActivityEagerExecution=true",
		"--dynamic-config-value", fmt.Sprintf("history.transferProcessorMaxPollRPS=%d", TransferQueueMaxPollRPS),
		"--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal")
	return args
}

// TransferQueueMaxPollRPS is history.transferProcessorMaxPollRPS: how often
// a history shard may read its transfer queue, which holds every workflow
// task a signal schedules (Temporal's default is 20 a second). The dev
// server has a single shard, so the default made every customer message
// wait for the next of 20 reads a second: a bare SDK workflow on it
// measured signal to workflow task start p50 35 ms, p99 50 ms; at 200,
// p50 3.5 ms, p99 11 ms. docker-compose.yml's Temporal sets the same.
const TransferQueueMaxPollRPS = 200

func searchAttributeTypeName(t enumspb.IndexedValueType) string {
	switch t {
	case enumspb.INDEXED_VALUE_TYPE_KEYWORD:
		return "Keyword"
	case enumspb.INDEXED_VALUE_TYPE_DATETIME:
		return "Datetime"
	case enumspb.INDEXED_VALUE_TYPE_TEXT:
		return "Text"
	case enumspb.INDEXED_VALUE_TYPE_INT:
		return "Int"
	case enumspb.INDEXED_VALUE_TYPE_DOUBLE:
		return "Double"
	case enumspb.INDEXED_VALUE_TYPE_BOOL:
		return "Bool"
	case enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST:
		return "KeywordList"
	}
	return t.String()
}
