using System.Diagnostics;

namespace OffHeapTracker.Monitoring;

/// <summary>One distinct captured stack, shared by every buffer allocated (or disposed) from the same code path.</summary>
/// <remarks>
/// <para>
/// Instances come from <see cref="StackCapture.Capture"/>, which interns them: two captures of the same frames
/// return the same object, so a monitor may group buffers by reference. The texts are built on first use, once
/// per distinct stack, so capturing never pays for formatting.
/// </para>
/// <para>
/// <see cref="Text"/> is the allocation site: the code that asked for memory and the path that led to it, with
/// pools, pipes, async plumbing and whatever resumed an async method folded away, and compiler-generated names
/// shown as written. Stacks that differ only in what was folded have the same <see cref="Text"/>, and reports
/// group them as one site. <see cref="RawText"/> and <see cref="Frames"/> keep everything that was captured.
/// </para>
/// </remarks>
public sealed class CapturedStackTrace
{
    private readonly StackFrame[] _frames;
    private string? _text;
    private string? _rawText;

    internal CapturedStackTrace(StackFrame[] frames, long hash)
    {
        _frames = frames;
        Hash = hash;
    }

    /// <summary>Gets the frames as captured, innermost first, starting at the code that called into OffHeapTracker.</summary>
    public IReadOnlyList<StackFrame> Frames => _frames;

    /// <summary>Gets the allocation site, one frame a line, innermost first, as <see cref="ResidentBuffer.StackTrace"/> and <see cref="LeakSite.StackTrace"/> show it.</summary>
    /// <value>The frames that name the site: the first is the code that asked for memory (not the pool, a pipe or a stream between them), the last is the innermost async method or the outermost application frame. Empty when no frame qualifies.</value>
    /// <remarks>See the remarks on the type, and the README's "Reading a report" for the folding rules.</remarks>
    public string Text => _text ??= StackFrameFormatter.Format(_frames);

    /// <summary>Gets every captured frame, one a line, innermost first, as the runtime names it: state machines, closures, plumbing and all.</summary>
    public string RawText => _rawText ??= StackFrameFormatter.FormatRaw(_frames);

    /// <summary>Gets what reports group this stack's buffers by: <see cref="Text"/>, built once per distinct stack.</summary>
    internal string SiteKey => Text;

    /// <summary>Gets the 64-bit hash of (method, IL offset) over the frames, the interning key (see <see cref="FrameMethods.IdentityHash"/>).</summary>
    internal long Hash { get; }

    /// <summary>Returns <see cref="Text"/>.</summary>
    /// <returns>The stack, one frame a line.</returns>
    public override string ToString() => Text;

    internal bool SameFramesAs(StackFrame[] frames)
    {
        if (frames.Length != _frames.Length)
        {
            return false;
        }

        for (int i = 0; i < frames.Length; i++)
        {
            if (!FrameMethods.SameSite(frames[i], _frames[i]))
            {
                return false;
            }
        }

        return true;
    }
}
