namespace OffHeapTracker.Testing;

/// <summary>Thrown by <see cref="BufferTestScope"/> when a test left buffers outstanding, dropped leases without <c>Dispose</c>, or disposed one twice; the message lists each, with its stack.</summary>
/// <remarks>Its own type, not a test framework's, so the package works under xunit, NUnit and MSTest alike: every framework reports an unexpected exception as a failure.</remarks>
public sealed class BufferLeakException : Exception
{
    /// <summary>Creates the exception with no message.</summary>
    public BufferLeakException()
    {
    }

    /// <summary>Creates the exception with a message listing what was found.</summary>
    /// <param name="message">What the test left behind.</param>
    public BufferLeakException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the exception that revealed the problem.</summary>
    /// <param name="message">What the test left behind.</param>
    /// <param name="innerException">The pool's own exception, such as a <see cref="TimeoutException"/> from <see cref="DirectBufferPool.WhenAllReturnedAsync"/>.</param>
    public BufferLeakException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
