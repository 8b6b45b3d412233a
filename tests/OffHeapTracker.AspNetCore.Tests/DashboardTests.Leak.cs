using System.Buffers;
using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using OffHeapTracker.AspNetCore.Tests.Support;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker.AspNetCore.Tests;

// The dashboard during a leak, as an operator meets it: a site that keeps growing next to a bigger one that is flat.
public sealed partial class DashboardTests
{
    private const string Ops = "/ops/buffers/";

    [Fact]
    [Trait("Category", "Browser")]
    public async Task InChromium_DuringAGrowingLeak_FlagsTheGrowingSiteFirst_FiltersSortsPausesAndConfirmsDisable()
    {
        // A second mapping that samples every second, so a test of a few seconds has a history worth the name.
        await using TestApp app = await TestApp.StartAsync(
            o => o.Stacks = StackPolicy.Every,
            web => web.MapBufferMonitor(o => o.HistoryInterval = TimeSpan.FromSeconds(1), Ops.TrimEnd('/')));
        var factory = app.App.Services.GetRequiredService<DirectBufferPoolFactory>();
        var flatPool = (DirectBufferPool)factory.Create(new MemoryPoolOptions { Owner = "resident" });
        var leakPool = (DirectBufferPool)factory.Create(new MemoryPoolOptions { Owner = "orders" });
        app.Monitor.Enable();

        // The flat workload: 64 connection-style POOL buffers of 16 KiB (1 MiB), held and never added to.
        var flat = new List<IMemoryOwner<byte>>();
        for (int i = 0; i < 64; i++)
        {
            flat.Add(RentResident(flatPool));
        }

        // The leak: one 4 KiB NORMAL buffer kept every 200 ms, so it stays far below the flat site while the test runs.
        var leaked = new ConcurrentQueue<IMemoryOwner<byte>>();
        using var stopLeak = new CancellationTokenSource();
        Task leaking = Task.Run(async () =>
        {
            while (!stopLeak.IsCancellationRequested)
            {
                leaked.Enqueue(LeakOne(leakPool));
                await Task.Delay(200, CancellationToken.None);
            }
        });

        try
        {
            // The server flags the leak before any page is open: the history is sampled by the host, not the browser.
            JsonElement growing = await WaitForGrowingSiteAsync(app);
            Assert.Contains(nameof(LeakOne), growing.GetProperty("stacktrace").GetString(), StringComparison.Ordinal);
            long openedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

            using IPlaywright playwright = await Playwright.CreateAsync();
            await using IBrowser browser = await LaunchAsync(playwright);
            var problems = new List<string>();
            IPage page = await OpenDashboardAsync(browser, app.BaseAddress, problems, Ops);

            // Suspects first: the growing site leads the list although the flat one holds far more bytes.
            ILocator sites = page.Locator("#sites tbody tr.site");
            await Assertions.Expect(sites.First).ToContainTextAsync(nameof(LeakOne));
            await Assertions.Expect(sites.First).ToHaveClassAsync(new Regex("suspect"));
            await Assertions.Expect(sites.First.Locator("td.flag")).ToHaveTextAsync(new Regex("growing"));
            ILocator flatRow = sites.Filter(new LocatorFilterOptions { HasText = nameof(RentResident) });
            await Assertions.Expect(flatRow).ToHaveCountAsync(1);
            await Assertions.Expect(flatRow.Locator("td.flag")).ToHaveTextAsync("");
            await Assertions.Expect(flatRow.Locator("td").Nth(3)).ToHaveTextAsync("1.0 MiB");
            await Assertions.Expect(page.Locator("#verdict")).ToContainTextAsync("only grew");
            await Assertions.Expect(page.Locator("#verdict")).ToContainTextAsync(nameof(LeakOne));

            // Pools told apart by id, numbers with separators and binary units.
            await Assertions.Expect(page.Locator("#pools tbody tr", new PageLocatorOptions { HasText = $"{flatPool.Name} #{flatPool.Id}" })).ToHaveCountAsync(1);
            await Assertions.Expect(page.Locator("#pools tbody tr", new PageLocatorOptions { HasText = $"{flatPool.Name} #{flatPool.Id}" }).Locator("td").Nth(3)).ToHaveTextAsync("1.0 MiB");

            // The chart has samples from before the page was opened, and draws them.
            await page.WaitForFunctionAsync(ChartHasInk);
            long firstSample = long.Parse(await page.Locator("#chart").GetAttributeAsync("data-first-sample") ?? "0", System.Globalization.CultureInfo.InvariantCulture);
            Assert.InRange(firstSample, 1, openedAt - 1);
            Assert.True(int.Parse(await page.Locator("#chart").GetAttributeAsync("data-samples") ?? "0", System.Globalization.CultureInfo.InvariantCulture) >= 3);

            // Expanding a site (by keyboard) shows its stack; the expansion and a text selection survive refreshes.
            await sites.First.Locator("button.expand").FocusAsync();
            await page.Keyboard.PressAsync("Enter");
            ILocator stack = page.Locator("#sites tr.detail pre");
            await Assertions.Expect(stack).ToContainTextAsync(nameof(LeakOne));

            // The screenshot shows the records grouped by site: the growing one flagged, beside the flat one.
            await page.SelectOptionAsync("#group-by", "site");
            await Assertions.Expect(page.Locator("#resident tbody tr.group.suspect", new PageLocatorOptions { HasText = nameof(LeakOne) })).ToHaveCountAsync(1);
            await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(RepositoryPaths.Root, "docs", "dashboard.png"), FullPage = true });
            await page.SelectOptionAsync("#group-by", "");
            await stack.EvaluateAsync("pre => { const r = document.createRange(); r.selectNodeContents(pre); const s = getSelection(); s.removeAllRanges(); s.addRange(r); }");
            await WaitForRefreshesAsync(page, 2);
            Assert.Contains(nameof(LeakOne), await page.EvaluateAsync<string>("() => getSelection().toString()"), StringComparison.Ordinal);
            await page.EvaluateAsync("() => getSelection().removeAllRanges()");
            await WaitForRefreshesAsync(page, 1);
            await Assertions.Expect(stack).ToBeVisibleAsync();

            // Filters: type and stack text on the sites, pool and context on the records and pools.
            await page.SelectOptionAsync("#f-type", "pool");
            await Assertions.Expect(sites.Filter(new LocatorFilterOptions { HasText = nameof(LeakOne) })).ToHaveCountAsync(0);
            await Assertions.Expect(flatRow).ToHaveCountAsync(1);
            await page.SelectOptionAsync("#f-type", "all");
            await page.FillAsync("#f-stack", nameof(RentResident));
            await Assertions.Expect(sites).ToHaveCountAsync(1);
            await Assertions.Expect(sites.First).ToContainTextAsync(nameof(RentResident));
            await page.FillAsync("#f-stack", "");
            await page.SelectOptionAsync("#f-pool", flatPool.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            await Assertions.Expect(page.Locator("#pools tbody tr")).ToHaveCountAsync(1);
            await Assertions.Expect(page.Locator("#resident tbody tr").First).ToBeVisibleAsync();
            foreach (string? poolName in await page.Locator("#resident tbody tr td:nth-child(5)").AllTextContentsAsync())
            {
                Assert.Equal($"{flatPool.Name} #{flatPool.Id}", poolName);
            }

            await page.SelectOptionAsync("#f-pool", "");
            await page.FillAsync("#f-context", "no such context");
            await Assertions.Expect(page.Locator("#resident tbody tr")).ToHaveCountAsync(0);
            await page.FillAsync("#f-context", "");
            await Assertions.Expect(page.Locator("#resident tbody tr")).ToHaveCountAsync(25);
            await Assertions.Expect(page.Locator("#page-info")).ToContainTextAsync("rows 1\u201325 of");

            // Sort: by bytes, largest first puts the flat site on top; again, smallest first does not.
            await page.ClickAsync("#sites th[data-col=bytes] button");
            await Assertions.Expect(sites.First).ToContainTextAsync(nameof(RentResident));
            await Assertions.Expect(page.Locator("#sites th[data-col=bytes]")).ToHaveAttributeAsync("aria-sort", "descending");
            await page.ClickAsync("#sites th[data-col=bytes] button");
            await Assertions.Expect(sites.First).Not.ToContainTextAsync(nameof(RentResident));
            await page.ClickAsync("#sites th[data-col=flag] button");
            await Assertions.Expect(sites.First).ToContainTextAsync(nameof(LeakOne));

            // Pause: the leak goes on, the page holds still; Resume catches up.
            ILocator leakCount = sites.Filter(new LocatorFilterOptions { HasText = nameof(LeakOne) }).Locator("td").Nth(2);
            await page.ClickAsync("#pause");
            await Assertions.Expect(page.Locator("#updated")).ToContainTextAsync("paused");
            string? held = await leakCount.TextContentAsync();
            int before = leaked.Count;
            await Eventually.WaitForAsync(() => leaked.Count, n => n >= before + 15, "the leak to rent 15 more buffers (3 s)");
            Assert.Equal(held, await leakCount.TextContentAsync());
            await page.ClickAsync("#pause");
            await Assertions.Expect(leakCount).Not.ToHaveTextAsync(held!);

            // Disable asks first, with the number of records it drops; Escape or "Keep it on" keeps it on.
            await page.ClickAsync("#disable");
            await Assertions.Expect(page.Locator("#confirm")).ToBeVisibleAsync();
            string text = await page.Locator("#confirm-text").TextContentAsync() ?? "";
            Match drops = Regex.Match(text, @"drops all ([\d,]+) records");
            Assert.True(drops.Success, text);
            Assert.True(long.Parse(drops.Groups[1].Value.Replace(",", "", StringComparison.Ordinal), System.Globalization.CultureInfo.InvariantCulture) >= 64 + before, text);
            await page.Keyboard.PressAsync("Escape");
            await Assertions.Expect(page.Locator("#confirm")).ToBeHiddenAsync();
            await page.ClickAsync("#disable");
            await page.ClickAsync("#confirm-no");
            Assert.True(app.Monitor.IsEnabled);
            await page.ClickAsync("#disable");
            await page.ClickAsync("#confirm-yes");
            await Assertions.Expect(page.Locator("#monitor-state")).ToHaveTextAsync("off");
            Assert.False(app.Monitor.IsEnabled);
            await Assertions.Expect(page.Locator("#verdict")).ToContainTextAsync("Monitor off");

            // Phone width: the page itself never scrolls sideways (wide tables scroll in their own boxes).
            await page.SetViewportSizeAsync(390, 800);
            Assert.True(await page.EvaluateAsync<bool>("() => document.documentElement.scrollWidth <= window.innerWidth"), "the page scrolls sideways at 390 px");

            Assert.True(problems.Count == 0, string.Join("\n", problems));
        }
        finally
        {
            await stopLeak.CancelAsync();
            await leaking;
            foreach (IMemoryOwner<byte> buffer in flat.Concat(leaked))
            {
                buffer.Dispose();
            }
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static DirectBuffer RentResident(DirectBufferPool pool) => pool.Rent(16 * 1024, BufferType.Pool);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static DirectBuffer LeakOne(DirectBufferPool pool)
    {
        using (BufferMonitor.BeginContext("GET /orders/leaky"))
        {
            return pool.Rent(4096);
        }
    }

    private static async Task<JsonElement> WaitForGrowingSiteAsync(TestApp app)
    {
        JsonElement found = default;
        await Eventually.WaitForAsync(
            () =>
            {
                using JsonDocument doc = JsonDocument.Parse(app.Client.GetStringAsync(Ops + "history").GetAwaiter().GetResult());
                foreach (JsonElement site in doc.RootElement.GetProperty("sites").EnumerateArray())
                {
                    if (site.GetProperty("growing").GetBoolean())
                    {
                        found = site.Clone();
                        return true;
                    }
                }

                return false;
            },
            done => done,
            "the history to flag a growing site");
        return found;
    }

    /// <summary>Waits until the page has finished <paramref name="count"/> more refreshes (it stamps each in <c>#updated</c>, once a second at most apart in text).</summary>
    private static async Task WaitForRefreshesAsync(IPage page, int count)
    {
        for (int i = 0; i < count; i++)
        {
            string? before = await page.Locator("#updated").TextContentAsync();
            await Assertions.Expect(page.Locator("#updated")).Not.ToHaveTextAsync(before ?? "");
        }
    }
}
