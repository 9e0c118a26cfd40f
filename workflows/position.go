package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"parley/activities"
	"parley/store"
)

// versionPositionUpdates: a conversation waiting in a queue checks its
// position now and then and announces it again when it moved by the
// workstream's step (issue 9). Asked lazily, where the check would be
// armed, so that histories recorded before it replay without it.
const versionPositionUpdates = "position-updates"

// minPositionCheck: the position is read at most once a minute, whatever
// the workstream's "every" (0 there means "whenever it moved").
const minPositionCheck = time.Minute

// positionDeadline is when the waiting conversation next reads its
// position: only once the position was announced, and while the
// queue-position message is on.
func (c *conversation) positionDeadline() time.Time {
	s := c.state
	if !c.automatedV || s.State != StateOpen || s.Queue == nil || s.Settings == nil || s.PositionAnnounced == 0 ||
		s.Settings.Messages[store.TriggerQueuePosition] == "" {
		return time.Time{}
	}
	last := s.PositionAnnouncedAt
	if s.PositionCheckedAt.After(last) {
		last = s.PositionCheckedAt
	}
	return last.Add(max(s.Settings.PositionEvery, minPositionCheck))
}

func (c *conversation) positionUpdatesOn(ctx workflow.Context) bool {
	return c.current || workflow.GetVersion(ctx, versionPositionUpdates, workflow.DefaultVersion, 1) != workflow.DefaultVersion
}

// armPosition keeps one timer for the next position check.
func (c *conversation) armPosition(ctx workflow.Context) {
	d := c.positionDeadline()
	if !d.IsZero() && !c.positionUpdatesOn(ctx) {
		d = time.Time{}
	}
	c.positionTimer.summary = "queue position: read it again"
	c.positionTimer.arm(ctx, d)
}

// checkPosition reads the position when its time has come and announces
// it when it moved by the step, at most every "every" minutes.
func (c *conversation) checkPosition(ctx workflow.Context) error {
	d := c.positionDeadline()
	now := workflow.Now(ctx).UTC()
	if d.IsZero() || now.Before(d) || !c.positionUpdatesOn(ctx) {
		return nil
	}
	var out activities.QueuePlaceOutput
	actx := c.readContext(ctx, storeActivity("read the queue position"))
	in := activities.QueuePlaceInput{ConversationID: c.state.ConversationID, Now: now}
	if err := c.execRead(actx, activities.QueuePlaceName, in).Get(ctx, &out); err != nil {
		return fmt.Errorf("queue place: %w", err)
	}
	c.state.PositionCheckedAt = now
	q := c.state.Queue
	if !out.InQueue || out.QueueID != q.QueueID {
		return nil // offered, assigned or moved meanwhile: that path says so
	}
	q.Position, q.PositionReadAt = out.Position, now
	if !c.announcePosition(ctx, now, out.QueueID, out.Position) {
		return nil
	}
	return c.automated(ctx, store.TriggerQueuePosition, map[string]string{
		store.VarQueue: q.QueueName, store.VarPosition: fmt.Sprint(out.Position), store.VarWait: waitText(out.EstimatedWait), store.VarHours: q.Hours,
	})
}
