using System.Buffers;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using OffHeapTracker.AspNetCore.Tests.Support;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker.AspNetCore.Tests;

// The views an operator reaches for first: the census in the verdict, records grouped, pools that share a name.
public sealed partial class DashboardTests
{
    [Fact]
    [Trait("Category", "Browser")]
    public async Task InChromium_GroupsResidentBuffersByContextSiteOrPool_AndARefreshKeepsGroupingExpansionFocusAndPlace()
    {
        await using TestApp app = await TestApp.StartAsync(o => o.Stacks = StackPolicy.Every);
        var pool = (DirectBufferPool)app.App.Services.GetRequiredService<DirectBufferPoolFactory>().Create(new MemoryPoolOptions { Owner = "grouped" });
        app.Monitor.Enable();
        var held = new List<IMemoryOwner<byte>>();
        try
        {
            for (int i = 0; i < 3; i++)
            {
                held.Add(RentIn(pool, "GET /alpha"));
            }

            held.Add(RentIn(pool, "GET /beta"));
            held.Add(RentIn(pool, "GET /beta"));

            // Twenty more contexts, one buffer each, make the grouped table taller than the window.
            for (int i = 0; i < 20; i++)
            {
                held.Add(RentIn(pool, $"GET /other/{i}"));
            }

            using IPlaywright playwright = await Playwright.CreateAsync();
            await using IBrowser browser = await LaunchAsync(playwright);
            var problems = new List<string>();
            IPage page = await OpenDashboardAsync(browser, app.BaseAddress, problems);
            await ShowEveryAgeAsync(page);

            // Ungrouped: one row per buffer.
            ILocator rows = page.Locator("#resident tbody tr");
            ILocator groups = page.Locator("#resident tbody tr.group");
            await Assertions.Expect(rows.Filter(new LocatorFilterOptions { HasText = "GET /alpha" })).ToHaveCountAsync(3);
            await Assertions.Expect(rows.Filter(new LocatorFilterOptions { HasText = "GET /other/" })).ToHaveCountAsync(20);
            await Assertions.Expect(groups).ToHaveCountAsync(0);

            // Grouped by context, chosen with the keyboard (options: nothing, site, pool, context): one row per
            // context with its count and bytes, and no buffer rows until a group is opened.
            await page.FocusAsync("#group-by");
            await page.Keyboard.PressAsync("ArrowDown");
            await page.Keyboard.PressAsync("ArrowDown");
            await page.Keyboard.PressAsync("ArrowDown");
            Assert.Equal("context", await page.InputValueAsync("#group-by"));
            ILocator alpha = groups.Filter(new LocatorFilterOptions { HasText = "GET /alpha" });
            ILocator beta = groups.Filter(new LocatorFilterOptions { HasText = "GET /beta" });
            await Assertions.Expect(alpha.Locator("button.toggle")).ToHaveTextAsync("\u25B8 3 buffers");
            await Assertions.Expect(alpha.Locator("td").Nth(3)).ToHaveTextAsync("12.0 KiB");
            await Assertions.Expect(beta.Locator("button.toggle")).ToHaveTextAsync("\u25B8 2 buffers");
            await Assertions.Expect(beta.Locator("td").Nth(3)).ToHaveTextAsync("8.0 KiB");
            await Assertions.Expect(page.Locator("#resident tbody tr:not(.group)")).ToHaveCountAsync(0);

            // Opened with the keyboard: its buffers, and only its, below it.
            await alpha.Locator("button.toggle").FocusAsync();
            await page.Keyboard.PressAsync("Enter");
            ILocator members = page.Locator("#resident tbody tr.member");
            await Assertions.Expect(members).ToHaveCountAsync(3);
            await Assertions.Expect(alpha.Locator("button.toggle")).ToHaveAttributeAsync("aria-expanded", "true");
            foreach (string? context in await members.Locator("td:nth-child(6)").AllTextContentsAsync())
            {
                Assert.Equal("GET /alpha", context);
            }

            // By site and by pool: all 25 come from one method and one pool.
            await page.SelectOptionAsync("#group-by", "site");
            ILocator site = groups.Filter(new LocatorFilterOptions { HasText = nameof(RentIn) });
            await Assertions.Expect(site.Locator("button.toggle")).ToHaveTextAsync("\u25B8 25 buffers");
            await Assertions.Expect(site.Locator("td").Nth(5)).ToHaveTextAsync("22 contexts");
            await page.SelectOptionAsync("#group-by", "pool");
            ILocator byPool = groups.Filter(new LocatorFilterOptions { HasText = $"grouped #{pool.Id}" });
            await Assertions.Expect(byPool.Locator("button.toggle")).ToHaveTextAsync("\u25B8 25 buffers");
            await Assertions.Expect(byPool.Locator("td").Nth(3)).ToHaveTextAsync("100 KiB");

            // Back to contexts: the group opened before is still open.
            await page.SelectOptionAsync("#group-by", "context");
            await Assertions.Expect(members).ToHaveCountAsync(3);

            // A refresh that brings a new buffer redraws the group in place: still grouped, still open, the toggle
            // still focused, the table where it was on screen (scrolled to just under the sticky header, whatever
            // the sections above it do meanwhile).
            await alpha.Locator("button.toggle").FocusAsync();
            await page.EvaluateAsync("() => window.scrollTo(0, document.getElementById('resident').getBoundingClientRect().top + window.scrollY - 60)");
            double top = await page.EvaluateAsync<double>("() => document.getElementById('resident').getBoundingClientRect().top");
            Assert.InRange(top, 59, 61);
            held.Add(RentIn(pool, "GET /alpha"));
            await Assertions.Expect(alpha.Locator("button.toggle")).ToHaveTextAsync("\u25BE 4 buffers");
            await Assertions.Expect(members).ToHaveCountAsync(4);
            Assert.Equal("context", await page.InputValueAsync("#group-by"));
            await Assertions.Expect(alpha.Locator("button.toggle")).ToBeFocusedAsync();
            Assert.InRange(await page.EvaluateAsync<double>("() => document.getElementById('resident').getBoundingClientRect().top"), top - 2, top + 2);

            // A selection inside a group survives refreshes.
            await members.First.Locator("td").Nth(5).EvaluateAsync("td => { const r = document.createRange(); r.selectNodeContents(td); const s = getSelection(); s.removeAllRanges(); s.addRange(r); }");
            await WaitForRefreshesAsync(page, 2);
            Assert.Equal("GET /alpha", await page.EvaluateAsync<string>("() => getSelection().toString()"));
            await page.EvaluateAsync("() => getSelection().removeAllRanges()");

            // Closed with the keyboard again.
            await alpha.Locator("button.toggle").FocusAsync();
            await page.Keyboard.PressAsync("Space");
            await Assertions.Expect(members).ToHaveCountAsync(0);

            Assert.True(problems.Count == 0, string.Join("\n", problems));
        }
        finally
        {
            foreach (IMemoryOwner<byte> buffer in held)
            {
                buffer.Dispose();
            }
        }
    }

    [Fact]
    [Trait("Category", "Browser")]
    public async Task InChromium_WithTheMonitorOff_TheVerdictLeadsWithTheCensusOfOldNormalBuffers()
    {
        await using TestApp app = await TestApp.StartAsync();
        Assert.False(app.Monitor.IsEnabled);

        // Ages come from the pool's clock, so two hours pass in an instant.
        var clock = new AheadClock();
        using var pool = new DirectBufferPool(new DirectBufferPoolOptions { Name = "batch", TimeProvider = clock });
        DirectBuffer[] old = [pool.Rent(4096), pool.Rent(4096), pool.Rent(4096)];
        clock.Advance(TimeSpan.FromHours(2));
        try
        {
            using IPlaywright playwright = await Playwright.CreateAsync();
            await using IBrowser browser = await LaunchAsync(playwright);
            var problems = new List<string>();
            IPage page = await OpenDashboardAsync(browser, app.BaseAddress, problems);
            await Assertions.Expect(page.Locator("#monitor-state")).ToHaveTextAsync("off");

            // First line: how many, how much, how old, in which pool, and what to do about it.
            ILocator census = page.Locator("#verdict li").First;
            await Assertions.Expect(census).ToContainTextAsync($"batch #{pool.Id} holds 3");
            await Assertions.Expect(census).ToHaveClassAsync("bad");
            string text = await census.TextContentAsync() ?? "";
            Match total = Regex.Match(text, @"^([\d,]+) NORMAL buffers out for over 1 min: ([\d.]+ [KMG]iB|[\d,]+ B), the oldest for 2 h 00 min");
            Assert.True(total.Success, text);
            Assert.True(long.Parse(total.Groups[1].Value, NumberStyles.AllowThousands, CultureInfo.InvariantCulture) >= 3, text);
            Assert.Contains("Switch the monitor on", text, StringComparison.Ordinal);

            Assert.True(problems.Count == 0, string.Join("\n", problems));
        }
        finally
        {
            foreach (DirectBuffer buffer in old)
            {
                buffer.Dispose();
            }
        }
    }

    [Fact]
    [Trait("Category", "Browser")]
    public async Task InChromium_TwoPoolsWithOneName_ShowAsTwoInPoolsFilterRecordsAndGroups()
    {
        await using TestApp app = await TestApp.StartAsync();
        var factory = app.App.Services.GetRequiredService<DirectBufferPoolFactory>();
        var first = (DirectBufferPool)factory.Create(new MemoryPoolOptions { Owner = "twin" });
        var second = (DirectBufferPool)factory.Create(new MemoryPoolOptions { Owner = "twin" });
        Assert.NotEqual(first.Id, second.Id);
        app.Monitor.Enable();
        using DirectBuffer a = RentIn(first, "twins");
        using DirectBuffer b = RentIn(second, "twins");
        using DirectBuffer b2 = RentIn(second, "twins");
        string firstLabel = $"twin #{first.Id}", secondLabel = $"twin #{second.Id}";

        using IPlaywright playwright = await Playwright.CreateAsync();
        await using IBrowser browser = await LaunchAsync(playwright);
        var problems = new List<string>();
        IPage page = await OpenDashboardAsync(browser, app.BaseAddress, problems);
        await ShowEveryAgeAsync(page);
        await page.FillAsync("#f-context", "twins");

        // The pools table and the pool filter.
        ILocator twinRows = page.Locator("#pools tbody tr td:first-child", new PageLocatorOptions { HasTextRegex = new Regex("^twin #") });
        await Assertions.Expect(twinRows).ToHaveCountAsync(2);
        Assert.Equal(new[] { firstLabel, secondLabel }.Order(StringComparer.Ordinal), (await twinRows.AllTextContentsAsync()).Order(StringComparer.Ordinal));
        Assert.Equal(2, await page.Locator("#f-pool option", new PageLocatorOptions { HasTextRegex = new Regex("^twin #") }).CountAsync());

        // The records: each labelled with its own pool, and the filter picks one pool, not every pool of that name.
        ILocator poolCells = page.Locator("#resident tbody tr td:nth-child(5)");
        await Assertions.Expect(poolCells).ToHaveCountAsync(3);
        Assert.Equal(new[] { firstLabel, secondLabel, secondLabel }.Order(StringComparer.Ordinal), (await poolCells.AllTextContentsAsync()).Order(StringComparer.Ordinal));
        await page.SelectOptionAsync("#f-pool", first.Id.ToString(CultureInfo.InvariantCulture));
        await Assertions.Expect(poolCells).ToHaveTextAsync([firstLabel]);
        await page.SelectOptionAsync("#f-pool", "");

        // Grouped by pool: two groups.
        await page.SelectOptionAsync("#group-by", "pool");
        ILocator groups = page.Locator("#resident tbody tr.group");
        await Assertions.Expect(groups).ToHaveCountAsync(2);
        await Assertions.Expect(groups.Filter(new LocatorFilterOptions { HasText = firstLabel }).Locator("button.toggle")).ToHaveTextAsync("\u25B8 1 buffer");
        await Assertions.Expect(groups.Filter(new LocatorFilterOptions { HasText = secondLabel }).Locator("button.toggle")).ToHaveTextAsync("\u25B8 2 buffers");

        Assert.True(problems.Count == 0, string.Join("\n", problems));
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static DirectBuffer RentIn(DirectBufferPool pool, string context)
    {
        using (BufferMonitor.BeginContext(context))
        {
            return pool.Rent(4096);
        }
    }
}
