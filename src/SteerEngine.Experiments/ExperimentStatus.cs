using SteerEngine.Experiments.Stages;

namespace SteerEngine.Experiments;

/// <summary>Where an item stands: done; running (where, since when); ready (inputs complete); waiting (for an earlier stage); failed (with the error).</summary>
public sealed record ItemStatus(string Stage, string Item, string State, string Detail);

/// <summary><c>steer experiment status</c>: every item of every stage and its state, read from the output tree only.</summary>
public static class ExperimentStatus
{
    public static List<ItemStatus> Of(Experiment experiment, string? outputRoot = null)
    {
        var layout = new ExperimentLayout(outputRoot ?? experiment.Output, experiment.Behavior);
        using var plan = new StudyPlan(experiment, layout, LibraryJudge.Factory, _ => { });
        var rows = new List<ItemStatus>();
        DateTime now = DateTime.UtcNow;
        foreach (string stage in StageNames.All)
            foreach (StageItem item in plan.Items(stage))
            {
                LockHolder? holder = LockHolder.Read(item.LockPath);
                if (item.IsDone()) rows.Add(new(stage, item.Name, "done", ""));
                else if (holder is not null && !holder.IsStale(experiment.Locks.StaleAfter, now))
                    rows.Add(new(stage, item.Name, "running", $"on {holder.Host} pid {holder.Pid} since {holder.Started:u}, heartbeat {(now - holder.Heartbeat).TotalSeconds:0} s ago"));
                else if (File.Exists(item.FailurePath)) rows.Add(new(stage, item.Name, "failed", ExperimentRunner.FailureMessage(item.Output)));
                else if (holder is not null) rows.Add(new(stage, item.Name, "stale", $"lock of {holder.Host} pid {holder.Pid} is stale; the next run takes it over"));
                else if (item.InputsReady()) rows.Add(new(stage, item.Name, "ready", File.Exists(ExperimentLayout.Partial(item.Output)) ? "partly done" : ""));
                else rows.Add(new(stage, item.Name, "waiting", "inputs not complete"));
            }
        return rows;
    }
}
