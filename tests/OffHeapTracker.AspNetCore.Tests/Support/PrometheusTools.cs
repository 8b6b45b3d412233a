using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace OffHeapTracker.AspNetCore.Tests.Support;

/// <summary>Debian's <c>prometheus</c> and <c>promtool</c> (<c>apt-get install prometheus</c>; <c>.ci/run</c> installs them when missing).</summary>
internal static class PrometheusTools
{
    public const string Prometheus = "/usr/bin/prometheus";

    public const string Promtool = "/usr/bin/promtool";

    /// <summary>Fails the test, saying how to install them, when the binaries are not there: a skipped check would pass unseen.</summary>
    public static void Require(string binary)
    {
        if (!File.Exists(binary))
        {
            Assert.Fail($"{binary} is missing: this test needs Debian's prometheus package (apt-get install prometheus; .ci/run installs it when missing).");
        }
    }

    /// <summary>Runs <c>promtool check metrics</c> on <paramref name="exposition"/>.</summary>
    /// <returns>promtool's exit code and everything it wrote.</returns>
    public static async Task<(int ExitCode, string Output)> CheckMetricsAsync(string exposition)
    {
        Require(Promtool);
        var start = new ProcessStartInfo(Promtool, ["check", "metrics"])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync(exposition);
        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(Eventually.Patience);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return (process.ExitCode, await stdout + await stderr);
    }

    /// <summary>A TCP port on 127.0.0.1 that was free a moment ago.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>A real Prometheus server on 127.0.0.1 and a free port, with its own configuration and storage in a temporary folder, scraping one target every second; disposing it kills the server and deletes the folder.</summary>
internal sealed class PrometheusServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _folder;
    private readonly StringBuilder _log = new();

    private PrometheusServer(Process process, string folder, Uri address)
    {
        _process = process;
        _folder = folder;
        Address = address;
        Client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(10) };
    }

    public Uri Address { get; }

    public HttpClient Client { get; }

    /// <summary>What the server wrote so far, for failure messages.</summary>
    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    /// <summary>Starts Prometheus scraping <paramref name="target"/> (<c>host:port</c>) at <paramref name="metricsPath"/> every second, and waits until it is ready.</summary>
    public static async Task<PrometheusServer> StartAsync(string target, string metricsPath)
    {
        PrometheusTools.Require(PrometheusTools.Prometheus);
        string folder = Directory.CreateTempSubdirectory("offheaptracker-prometheus-").FullName;
        string config = Path.Combine(folder, "prometheus.yml");
        await File.WriteAllTextAsync(config, $"""
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
              evaluation_interval: 1s
            scrape_configs:
              - job_name: offheaptracker
                metrics_path: {metricsPath}
                static_configs:
                  - targets: ['{target}']
            """);
        int port = PrometheusTools.FreePort();
        var start = new ProcessStartInfo(PrometheusTools.Prometheus,
        [
            $"--config.file={config}",
            $"--storage.tsdb.path={Path.Combine(folder, "data")}",
            $"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1h",
            "--log.level=info",
        ])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = folder,
        };
        Process process = Process.Start(start)!;
        var server = new PrometheusServer(process, folder, new Uri($"http://127.0.0.1:{port}/"));
        process.OutputDataReceived += (_, e) => server.Append(e.Data);
        process.ErrorDataReceived += (_, e) => server.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await server.WaitUntilReadyAsync();
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }

        return server;
    }

    /// <summary>Runs an instant query through <c>/api/v1/query</c>.</summary>
    /// <returns>The response body (JSON) and its status code.</returns>
    public async Task<(HttpStatusCode Status, string Body)> QueryAsync(string promQl)
    {
        using HttpResponseMessage response = await Client.GetAsync("api/v1/query?query=" + Uri.EscapeDataString(promQl));
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(30)).Token);
            }
        }
        finally
        {
            _process.Dispose();
            try
            {
                Directory.Delete(_folder, recursive: true);
            }
            catch (IOException)
            {
                // The temporary folder is left for the operating system; the server is gone either way.
            }
        }
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_log)
            {
                _log.AppendLine(line);
            }
        }
    }

    private async Task WaitUntilReadyAsync()
    {
        // Startup replays an empty write-ahead log: quick, but a loaded 2-core runner can take seconds.
        long started = Stopwatch.GetTimestamp();
        while (true)
        {
            if (_process.HasExited)
            {
                Assert.Fail($"prometheus exited with code {_process.ExitCode} before it was ready:\n{Log}");
            }

            try
            {
                using HttpResponseMessage ready = await Client.GetAsync("-/ready");
                if (ready.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            if (Stopwatch.GetElapsedTime(started) > Eventually.Patience * 2)
            {
                Assert.Fail($"prometheus was not ready after {(Eventually.Patience * 2).TotalSeconds:F0} s:\n{Log}");
            }

            await Task.Delay(100);
        }
    }
}
