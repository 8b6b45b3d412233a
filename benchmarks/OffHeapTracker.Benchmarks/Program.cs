using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using OffHeapTracker.Benchmarks;

if (args.Contains("--record-bytes"))
{
    RecordSize.Measure();
    return;
}

if (args.Contains("--audit-fast-stacks"))
{
    FastStackAudit.Run();
    return;
}

// A shorter job than BenchmarkDotNet's default keeps the whole suite under about 15 minutes on 2 cores; compare
// ratios within one run, never absolute times across runs (the machines are shared).
IConfig config = DefaultConfig.Instance
    .AddDiagnoser(MemoryDiagnoser.Default)
    .AddJob(Job.Default.WithWarmupCount(4).WithIterationCount(12).WithId("Short"))
    .WithOptions(ConfigOptions.DisableLogFile);
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
