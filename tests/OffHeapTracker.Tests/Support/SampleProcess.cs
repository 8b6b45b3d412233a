using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace OffHeapTracker.Tests.Support;

/// <summary>A sample run as a real child process from its own build output (<c>dotnet X.dll</c>, never <c>dotnet run</c>), its output captured.</summary>
/// <remarks>
/// The samples are built before the tests through reference-only project references in the test project, in the
/// same configuration. <see cref="Dispose"/> kills the process if it is still running, so no test leaves one behind.
/// </remarks>
internal sealed partial class SampleProcess : IDisposable
{
    public const int SigInt = 2;
    public const int SigTerm = 15;

    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly Lock _lock = new();

    private SampleProcess(Process process) => _process = process;

    public int Id => _process.Id;

    public string Output
    {
        get
        {
            lock (_lock)
            {
                return _output.ToString();
            }
        }
    }

    public static SampleProcess Start(string sample, params string[] args)
    {
        // bin/<configuration>/<tfm>/ of the tests mirrors that of every sample.
        var testOutput = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        string dll = Path.Combine(RepositoryPaths.Root, "samples", sample, "bin", testOutput.Parent!.Name, testOutput.Name, sample + ".dll");
        if (!File.Exists(dll))
        {
            throw new FileNotFoundException($"{dll} is missing: build the solution (or this test project, which builds the samples) first.", dll);
        }

        var start = new ProcessStartInfo
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(dll)!,
        };

        // A shell without job control starts background jobs with SIGINT ignored, and an ignored signal stays
        // ignored across exec: then no program, fixed or not, could see the SIGINT these tests send.
        if (InheritsIgnoredSigInt())
        {
            start.FileName = "env";
            start.ArgumentList.Add("--default-signal=INT");
            start.ArgumentList.Add(DotnetHost());
        }
        else
        {
            start.FileName = DotnetHost();
        }

        start.ArgumentList.Add(dll);
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        var process = new Process { StartInfo = start };
        var sampleProcess = new SampleProcess(process);
        process.OutputDataReceived += (_, e) => sampleProcess.Append(e.Data);
        process.ErrorDataReceived += (_, e) => sampleProcess.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return sampleProcess;
    }

    /// <summary>Returns a loopback port that was free a moment ago.</summary>
    public static int FreePort()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)listener.LocalEndPoint!).Port;
    }

    /// <summary>Waits until the output contains <paramref name="text"/>; fails if the process exits first or <paramref name="timeout"/> passes.</summary>
    public async Task WaitForOutputAsync(string text, TimeSpan timeout)
    {
        var waited = Stopwatch.StartNew();
        while (!Output.Contains(text, StringComparison.Ordinal))
        {
            if (_process.HasExited || waited.Elapsed > timeout)
            {
                Assert.Fail($"'{text}' never came ({(_process.HasExited ? $"exited with {_process.ExitCode}" : $"still running after {timeout}")}). Output:\n{Output}");
            }

            await Task.Delay(20);
        }
    }

    public void Signal(int signal)
    {
        if (Kill(_process.Id, signal) != 0)
        {
            throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    /// <summary>Waits for the process to exit.</summary>
    /// <returns>True if it exited within <paramref name="timeout"/>; then all of its output has been read.</returns>
    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            return false;
        }

        _process.WaitForExit(); // drains the redirected output
        return true;
    }

    public int ExitCode => _process.ExitCode;

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException)
        {
            // It exited between the check and the kill.
        }

        _process.Dispose();
    }

    private static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host
        : Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet" ? Environment.ProcessPath!
        : "dotnet";

    private static bool InheritsIgnoredSigInt()
    {
        // /proc/self/status: "SigIgn:\t0000000000000002" when SIGINT (bit 2 - 1) is ignored.
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        string? line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("SigIgn:", StringComparison.Ordinal));
        return line is not null && (Convert.ToUInt64(line["SigIgn:".Length..].Trim(), 16) & (1UL << (SigInt - 1))) != 0;
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_lock)
            {
                _output.AppendLine(line);
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
