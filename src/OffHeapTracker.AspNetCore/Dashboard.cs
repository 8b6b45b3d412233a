using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace OffHeapTracker.AspNetCore;

/// <summary>The dashboard page and a Content-Security-Policy that allows exactly its own inline script and style.</summary>
internal sealed partial record Dashboard(string Html, string ContentSecurityPolicy)
{
    private static readonly Lazy<Dashboard> s_instance = new(Load);

    public static Dashboard Instance => s_instance.Value;

    private static Dashboard Load()
    {
        using Stream stream = typeof(DirectBufferPoolFactory).Assembly.GetManifestResourceStream("OffHeapTracker.AspNetCore.dashboard.html")
            ?? throw new InvalidOperationException("The dashboard resource is missing from OffHeapTracker.AspNetCore.");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        string html = reader.ReadToEnd();
        string script = Hash(ScriptBlock().Match(html).Groups[1].Value);
        string style = Hash(StyleBlock().Match(html).Groups[1].Value);

        // Defence in depth behind the page's textContent-only rendering: no other script can run.
        return new Dashboard(html, $"default-src 'none'; script-src '{script}'; style-src '{style}'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    }

    private static string Hash(string block) => "sha256-" + Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(block)));

    [GeneratedRegex("<script>(.*?)</script>", RegexOptions.Singleline)]
    private static partial Regex ScriptBlock();

    [GeneratedRegex("<style>(.*?)</style>", RegexOptions.Singleline)]
    private static partial Regex StyleBlock();
}
