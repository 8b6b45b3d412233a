using System.Runtime.InteropServices;

namespace OffHeapTracker.Monitoring;

/// <summary>The two native facts a frame-pointer walk needs on Linux x64: the calling method's frame pointer (RBP), read by a 40-byte stub, and the current thread's stack bounds.</summary>
/// <remarks>
/// <para>
/// The stub returns the first frame pointer at or above its argument in the RBP chain that starts at its own
/// caller: in optimised code the unmanaged call is inlined and that is the calling method's RBP at once; in debuggable
/// (or otherwise unoptimised) code the call goes through a marshalling stub, and the chain is followed past it while
/// that stub's frame is still live. It reads only between its own stack pointer and its argument (live stack of this
/// thread), strictly upward, 8-byte aligned, at most eight links, and returns 0 when the chain does not get there.
/// It is written into one anonymous page that is mapped read-write, then flipped to
/// read-execute with <c>mprotect</c> before it is ever called: the page is never writable and executable at once,
/// so a host that enforces W^X can allow it, and a host that refuses executable mappings altogether makes
/// <see cref="TryMapStub"/> fail (the accelerator then stays off and says why). The page is never unmapped: it is
/// 4 KiB for the life of the process, and a pointer to it may be cached by any thread.
/// </para>
/// <para>
/// It is called through an unmanaged function pointer with <c>SuppressGCTransition</c>: a plain <c>call</c>, no
/// transition frame, legal because the stub runs four instructions, never blocks, never calls back into the
/// runtime and touches no managed memory. Only <see cref="FramePointerWalker"/> calls it.
/// </para>
/// </remarks>
internal static unsafe partial class NativeFrameReader
{
    private const int ProtRead = 1;
    private const int ProtWrite = 2;
    private const int ProtExec = 4;
    private const int MapPrivate = 0x02;
    private const int MapAnonymous = 0x20;
    private const nuint PageSize = 4096;

    /// <summary>The stub, assembled with GNU as from this (System V: the argument <c>low</c> in RDI, the result in RAX).</summary>
    /// <remarks>
    /// <code>
    ///     mov rax, rbp          ; the chain starts at the caller's frame pointer
    ///     mov ecx, 8            ; at most eight links
    /// 1:  cmp rax, rdi
    ///     jae 3f                ; at or above low: the frame asked for
    ///     cmp rax, rsp
    ///     jbe 2f                ; not above this stub's stack pointer: not a live frame
    ///     test al, 7
    ///     jnz 2f                ; misaligned
    ///     mov rdx, [rax]        ; safe: rsp &lt; rax, rax + 8 &lt;= low (both 8-aligned): live stack
    ///     cmp rdx, rax
    ///     jbe 2f                ; the chain must go strictly up
    ///     mov rax, rdx
    ///     dec ecx
    ///     jnz 1b
    /// 2:  xor eax, eax          ; not found
    /// 3:  ret
    /// </code>
    /// </remarks>
    private static ReadOnlySpan<byte> X64FramePointerAtOrAbove =>
    [
        0x48, 0x89, 0xE8, 0xB9, 0x08, 0x00, 0x00, 0x00, 0x48, 0x39, 0xF8, 0x73, 0x1A, 0x48, 0x39, 0xE0,
        0x76, 0x13, 0xA8, 0x07, 0x75, 0x0F, 0x48, 0x8B, 0x10, 0x48, 0x39, 0xC2, 0x76, 0x07, 0x48, 0x89,
        0xD0, 0xFF, 0xC9, 0x75, 0xE3, 0x31, 0xC0, 0xC3,
    ];

    // Written once under s_mapLock, before any walker can see it; a stale null only means "not mapped yet".
    private static delegate* unmanaged[SuppressGCTransition]<nint, nint> s_readFramePointer;
    private static readonly Lock s_mapLock = new();

    // The current thread's highest stack address (exclusive), read once per thread; -1 when the bounds could not
    // be read (that thread never walks).
    [ThreadStatic]
    private static nint t_stackHigh;

    /// <summary>Gets a value indicating whether the stub is mapped and callable.</summary>
    public static bool IsMapped => s_readFramePointer != null;

    /// <summary>Maps the stub, once per process.</summary>
    /// <param name="failure">Why it could not be mapped.</param>
    /// <returns>True when the stub is callable.</returns>
    public static bool TryMapStub(out string? failure)
    {
        lock (s_mapLock)
        {
            failure = null;
            if (s_readFramePointer != null)
            {
                return true;
            }

            nint page;
            try
            {
                page = Mmap(0, PageSize, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
                if (page == -1)
                {
                    failure = $"the host refused an anonymous mapping (mmap errno {Marshal.GetLastPInvokeError()})";
                    return false;
                }

                // Safe: the page is ours, 4 KiB, read-write, and the stub is 40 bytes.
                X64FramePointerAtOrAbove.CopyTo(new Span<byte>((void*)page, X64FramePointerAtOrAbove.Length));
                if (Mprotect(page, PageSize, ProtRead | ProtExec) != 0)
                {
                    // A hardened host (SELinux execmem, PaX MPROTECT) refuses to make it executable: leave it mapped
                    // read-write and unused; it is one page.
                    failure = $"the host refused to make a page executable (mprotect errno {Marshal.GetLastPInvokeError()})";
                    return false;
                }
            }
            catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
            {
                failure = $"libc's mmap/mprotect could not be called ({ex.GetType().Name})";
                return false;
            }

            // x86 keeps instruction fetch coherent with stores, so no cache flush is needed before the first call.
            s_readFramePointer = (delegate* unmanaged[SuppressGCTransition]<nint, nint>)page;
            return true;
        }
    }

    /// <summary>Gets the stub: called with the address of one of the caller's locals, it returns the caller's frame pointer (RBP), the first in the chain at or above that address, or 0.</summary>
    /// <remarks>The caller must be an RBP-framed method and make the call itself (see <see cref="FramePointerWalker"/>). Null until <see cref="TryMapStub"/> succeeds.</remarks>
    public static delegate* unmanaged[SuppressGCTransition]<nint, nint> ReadFramePointerStub => s_readFramePointer;

    /// <summary>Gets the current thread's highest stack address (exclusive), reading it on the thread's first call.</summary>
    /// <returns>The address, or 0 when the bounds cannot be read on this thread.</returns>
    public static nint CurrentThreadStackHigh()
    {
        nint high = t_stackHigh;
        if (high == 0)
        {
            high = t_stackHigh = ReadStackHigh();
        }

        return high > 0 ? high : 0;
    }

    private static nint ReadStackHigh()
    {
        // pthread_attr_t is 56 bytes on glibc x64, 64 on arm64, 36/56 on musl: 256 is room for any of them.
        byte* attr = stackalloc byte[256];
        try
        {
            if (PthreadGetattrNp(PthreadSelf(), attr) != 0)
            {
                return -1;
            }

            nint low;
            nuint size;
            int error = PthreadAttrGetstack(attr, &low, &size);
            _ = PthreadAttrDestroy(attr);
            if (error != 0 || low <= 0 || size == 0 || size > (nuint)(nint.MaxValue - low))
            {
                return -1;
            }

            // Every byte from this thread's current stack pointer up to here is mapped: the walk reads only there.
            nint high = unchecked(low + (nint)size);
            nint here = (nint)(&attr);
            return here > low && here < high ? high : -1;
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return -1;
        }
    }

    /// <summary>Says whether <paramref name="address"/> lies in a module the dynamic linker loaded (the host, the runtime, libc, any native library): native code, never JIT-compiled or ReadyToRun managed code, which the runtime maps itself.</summary>
    /// <returns>True for native code; false for managed code, stubs and anything unknown; null when <c>dladdr</c> cannot be called.</returns>
    /// <remarks>Takes the dynamic linker's lock: only for a stack seen for the first time, never per capture.</remarks>
    public static bool? IsInNativeModule(nint address)
    {
        // Dl_info is four pointers; 64 bytes is room to spare. dladdr only reads the linker's tables, never address.
        byte* info = stackalloc byte[64];
        try
        {
            return DladdrLibc((void*)address, info) != 0;
        }
        catch (EntryPointNotFoundException)
        {
            try
            {
                // glibc before 2.34 keeps dladdr in libdl.
                return DladdrLibdl((void*)address, info) != 0;
            }
            catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
            {
                return null;
            }
        }
        catch (DllNotFoundException)
        {
            return null;
        }
    }

    [LibraryImport("libc", EntryPoint = "dladdr")]
    private static partial int DladdrLibc(void* address, void* info);

    [LibraryImport("libdl.so.2", EntryPoint = "dladdr")]
    private static partial int DladdrLibdl(void* address, void* info);

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial nint Mmap(nint address, nuint length, int protection, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "mprotect", SetLastError = true)]
    private static partial int Mprotect(nint address, nuint length, int protection);

    [LibraryImport("libc", EntryPoint = "pthread_self")]
    private static partial nint PthreadSelf();

    [LibraryImport("libc", EntryPoint = "pthread_getattr_np")]
    private static partial int PthreadGetattrNp(nint thread, void* attr);

    [LibraryImport("libc", EntryPoint = "pthread_attr_getstack")]
    private static partial int PthreadAttrGetstack(void* attr, nint* stackAddress, nuint* stackSize);

    [LibraryImport("libc", EntryPoint = "pthread_attr_destroy")]
    private static partial int PthreadAttrDestroy(void* attr);
}
