using System.Buffers;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using OffHeapTracker.AspNetCore.Tests.Support;

namespace OffHeapTracker.AspNetCore.Tests;

// The dashboard in a real browser: Debian's Chromium, driven by Playwright.
public sealed partial class DashboardTests
{
    private const string Chromium = "/usr/bin/chromium";
    private const string Hostile = "<img src=x onerror=alert(1)>";

    [Fact]
    [Trait("Category", "Browser")]
    public async Task InChromium_ShowsPoolsResidentSitesAndChart_TogglesTheMonitor_AndShowsHostileTextLiterally()
    {
        await using TestApp app = await TestApp.StartAsync();
        MemoryPool<byte> pool = app.App.Services.GetRequiredService<DirectBufferPoolFactory>().Create(new MemoryPoolOptions { Owner = "xss-test" });

        using IPlaywright playwright = await Playwright.CreateAsync();
        await using IBrowser browser = await LaunchAsync(playwright);
        IPage page = await browser.NewPageAsync();
        var problems = new List<string>();
        Watch(page, problems);

        // Without the trailing slash: the page must still find its endpoints (it is redirected to the slash).
        await page.GotoAsync(new Uri(app.BaseAddress, "/debug/buffers").ToString());
        await Assertions.Expect(page.Locator("#monitor-state")).ToHaveTextAsync("off");

        await page.ClickAsync("#enable");
        await Assertions.Expect(page.Locator("#monitor-state")).ToContainTextAsync("on");
        Assert.True(app.Monitor.IsEnabled);

        IMemoryOwner<byte> hostile;
        using (BufferMonitor.BeginContext(Hostile))
        {
            hostile = pool.Rent(4096);
        }

        await ShowEveryAgeAsync(page);
        ILocator cell = page.Locator("#resident tbody td", new PageLocatorOptions { HasText = Hostile });
        await Assertions.Expect(cell).ToHaveCountAsync(1);
        Assert.Equal(Hostile, await cell.TextContentAsync());
        Assert.Equal(0, await page.Locator("#resident img, #sites img").CountAsync());

        await Assertions.Expect(page.Locator("#pools tbody tr", new PageLocatorOptions { HasText = "kestrel #" }).First).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#sites tbody tr.site").First).ToBeVisibleAsync();

        // The chart draws the server's history, which the host has sampled since it started.
        await page.WaitForFunctionAsync(ChartHasInk);

        await page.ClickAsync("#disable");
        await page.ClickAsync("#confirm-yes");
        await Assertions.Expect(page.Locator("#monitor-state")).ToHaveTextAsync("off");
        Assert.False(app.Monitor.IsEnabled);

        Assert.True(problems.Count == 0, string.Join("\n", problems));
        hostile.Dispose();
    }

    /// <summary>True once the chart canvas has a painted pixel.</summary>
    private const string ChartHasInk =
        "() => { const c = document.getElementById('chart'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) return true; return false; }";

    private static async Task<IBrowser> LaunchAsync(IPlaywright playwright)
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: install Debian's chromium package (.ci/run does).");

        // Playwright gives up on a wait after 5 s by default, which a shared 2-core machine running Kestrel and
        // Chromium side by side can exceed. Every wait ends as soon as its condition holds, so a wide bound costs a
        // passing run nothing and only a broken page waits it out.
        float patience = (float)Eventually.Patience.TotalMilliseconds;
        Assertions.SetDefaultExpectTimeout(patience);
        return await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
    }

    /// <summary>Opens the dashboard at 1280×800 (an operator's laptop), with <see cref="Watch"/> collecting into <paramref name="problems"/>.</summary>
    /// <summary>Sets the minimum-age filter to 0, as an operator would to see buffers younger than the 1 s default.</summary>
    private static async Task ShowEveryAgeAsync(IPage page)
    {
        await page.FillAsync("#f-age", "0");
        await page.DispatchEventAsync("#f-age", "change");
    }

    private static async Task<IPage> OpenDashboardAsync(IBrowser browser, Uri baseAddress, List<string> problems, string path = "/debug/buffers/")
    {
        IPage page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 800 } });
        Watch(page, problems);
        await page.GotoAsync(new Uri(baseAddress, path).ToString());
        return page;
    }

    /// <summary>Collects everything that would mean the page is broken: failed requests, HTTP errors, console errors, script errors, native dialogs.</summary>
    private static void Watch(IPage page, List<string> problems)
    {
        page.SetDefaultTimeout((float)Eventually.Patience.TotalMilliseconds);
        page.RequestFailed += (_, request) => problems.Add("request failed: " + request.Url);
        page.Response += (_, response) =>
        {
            if (response.Status >= 400)
            {
                problems.Add($"HTTP {response.Status}: {response.Url}");
            }
        };
        page.Console += (_, message) =>
        {
            if (message.Type == "error")
            {
                problems.Add("console: " + message.Text);
            }
        };
        page.PageError += (_, error) => problems.Add("page: " + error);
        page.Dialog += async (_, dialog) =>
        {
            problems.Add("dialog: " + dialog.Message);
            await dialog.DismissAsync();
        };
    }
}
