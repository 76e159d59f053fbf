using System.Buffers.Binary;
using System.Text;

namespace SteerEngine.Steering.Formats;

/// <summary>A global a pickle names, e.g. <c>torch._utils._rebuild_tensor_v2</c>.</summary>
internal sealed record PickleGlobal(string Module, string Name)
{
    public override string ToString() => $"{Module}.{Name}";
}

/// <summary>A pickled dict, keys and values in insertion order.</summary>
internal sealed class PickleDict
{
    public List<KeyValuePair<object?, object?>> Items { get; } = [];
}

/// <summary>
/// The part of Python's pickle machine that <c>torch.save</c> uses (protocol 2, and the framing and
/// memo opcodes of protocol 4). Values are long, double, string, bool, null, tuples (object?[]),
/// lists, <see cref="PickleDict"/> and <see cref="PickleGlobal"/>; nothing is imported or run:
/// BINPERSID and REDUCE go to the caller's callbacks, and BUILD keeps the object as it is (tensors and
/// dicts need no state). Any other opcode is an error naming it.
/// </summary>
internal sealed class PickleReader
{
    readonly byte[] data;
    readonly string name;
    readonly Func<object?, object?> persistentLoad;
    readonly Func<PickleGlobal, object?[], object?> reduce;
    readonly List<object?> stack = [];
    readonly Stack<int> marks = new();
    readonly Dictionary<long, object?> memo = [];
    int pos;

    PickleReader(byte[] data, string name, Func<object?, object?> persistentLoad, Func<PickleGlobal, object?[], object?> reduce)
    {
        this.data = data;
        this.name = name;
        this.persistentLoad = persistentLoad;
        this.reduce = reduce;
    }

    /// <param name="name">What error messages call the pickle, e.g. "vec.pt: vec/data.pkl".</param>
    public static object? Load(byte[] data, string name, Func<object?, object?> persistentLoad, Func<PickleGlobal, object?[], object?> reduce) =>
        new PickleReader(data, name, persistentLoad, reduce).Run();

    object? Run()
    {
        while (true)
        {
            int at = pos;
            byte op = Byte();
            switch (op)
            {
                case Op.Proto:
                    if (Byte() > 5) throw Fail(at, $"pickle protocol {data[at + 1]} is newer than 5");
                    break;
                case Op.Frame: Bytes(8); break;
                case Op.Stop:
                    if (stack.Count != 1 || marks.Count != 0)
                        throw Fail(at, $"STOP with {stack.Count} values and {marks.Count} marks on the stack, expected 1 and 0");
                    return stack[0];
                case Op.Mark: marks.Push(stack.Count); break;
                case Op.EmptyDict: stack.Add(new PickleDict()); break;
                case Op.EmptyList: stack.Add(new List<object?>()); break;
                case Op.EmptyTuple: stack.Add(Array.Empty<object?>()); break;
                case Op.Tuple: stack.Add(PopToMark(at)); break;
                case Op.Tuple1: stack.Add(PopN(at, 1)); break;
                case Op.Tuple2: stack.Add(PopN(at, 2)); break;
                case Op.Tuple3: stack.Add(PopN(at, 3)); break;
                case Op.Global:
                    string module = Line(at);
                    stack.Add(new PickleGlobal(module, Line(at)));
                    break;
                case Op.StackGlobal:
                    string qualName = Pop<string>(at, "STACK_GLOBAL name");
                    stack.Add(new PickleGlobal(Pop<string>(at, "STACK_GLOBAL module"), qualName));
                    break;
                case Op.BinPut: memo[Byte()] = Peek(at); break;
                case Op.LongBinPut: memo[BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4))] = Peek(at); break;
                case Op.Memoize: memo[memo.Count] = Peek(at); break;
                case Op.BinGet: stack.Add(Memo(at, Byte())); break;
                case Op.LongBinGet: stack.Add(Memo(at, BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4)))); break;
                case Op.BinInt: stack.Add((long)BinaryPrimitives.ReadInt32LittleEndian(Bytes(4))); break;
                case Op.BinInt1: stack.Add((long)Byte()); break;
                case Op.BinInt2: stack.Add((long)BinaryPrimitives.ReadUInt16LittleEndian(Bytes(2))); break;
                case Op.Long1: stack.Add(Long(at, Bytes(Byte()))); break;
                case Op.BinUnicode: stack.Add(Encoding.UTF8.GetString(Bytes(Length(at, BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4)))))); break;
                case Op.ShortBinUnicode: stack.Add(Encoding.UTF8.GetString(Bytes(Byte()))); break;
                case Op.BinString: stack.Add(Encoding.Latin1.GetString(Bytes(Length(at, BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4)))))); break;
                case Op.ShortBinString: stack.Add(Encoding.Latin1.GetString(Bytes(Byte()))); break;
                case Op.BinFloat: stack.Add(BinaryPrimitives.ReadDoubleBigEndian(Bytes(8))); break;
                case Op.NewTrue: stack.Add(true); break;
                case Op.NewFalse: stack.Add(false); break;
                case Op.None: stack.Add(null); break;
                case Op.SetItem:
                {
                    object? value = Pop<object>(at, "SETITEM value", allowNull: true);
                    object? key = Pop<object>(at, "SETITEM key", allowNull: true);
                    Top<PickleDict>(at, "SETITEM").Items.Add(new(key, value));
                    break;
                }
                case Op.SetItems:
                {
                    object?[] items = PopToMark(at);
                    if (items.Length % 2 != 0) throw Fail(at, "SETITEMS with an odd number of items");
                    var dict = Top<PickleDict>(at, "SETITEMS");
                    for (int i = 0; i < items.Length; i += 2) dict.Items.Add(new(items[i], items[i + 1]));
                    break;
                }
                case Op.Append:
                {
                    object? value = Pop<object>(at, "APPEND value", allowNull: true);
                    Top<List<object?>>(at, "APPEND").Add(value);
                    break;
                }
                case Op.Appends:
                {
                    object?[] items = PopToMark(at);
                    Top<List<object?>>(at, "APPENDS").AddRange(items);
                    break;
                }
                case Op.Reduce:
                {
                    object?[] args = Pop<object?[]>(at, "REDUCE arguments");
                    PickleGlobal callable = Pop<PickleGlobal>(at, "REDUCE callable");
                    stack.Add(reduce(callable, args));
                    break;
                }
                case Op.Build:
                    Pop<object>(at, "BUILD state", allowNull: true);
                    Peek(at);
                    break;
                case Op.BinPersId: stack.Add(persistentLoad(Pop<object>(at, "BINPERSID id", allowNull: true))); break;
                default:
                    throw Fail(at, $"unsupported pickle opcode {OpName(op)}; a torch.save tensor file does not use it");
            }
        }
    }

    InvalidDataException Fail(int at, string problem) => new($"{name}: {problem} (at byte {at})");

    byte Byte()
    {
        if (pos >= data.Length) throw Fail(pos, "pickle ends without STOP");
        return data[pos++];
    }

    ReadOnlySpan<byte> Bytes(int n)
    {
        if (n > data.Length - pos) throw Fail(pos, $"pickle ends inside a {n}-byte field");
        pos += n;
        return data.AsSpan(pos - n, n);
    }

    int Length(int at, uint n) => n <= int.MaxValue ? (int)n : throw Fail(at, $"string of {n} bytes");

    string Line(int at)
    {
        int end = Array.IndexOf(data, (byte)'\n', pos);
        if (end < 0) throw Fail(at, "GLOBAL name without a newline");
        string s = Encoding.UTF8.GetString(data, pos, end - pos);
        pos = end + 1;
        return s;
    }

    object Long(int at, ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length > 8) throw Fail(at, $"LONG1 of {bytes.Length} bytes does not fit in 64 bits");
        if (bytes.Length == 0) return 0L;
        // Little-endian two's complement: sign-extend from the top byte.
        long v = (sbyte)bytes[^1];
        for (int i = bytes.Length - 2; i >= 0; i--) v = (v << 8) | bytes[i];
        return v;
    }

    object? Memo(int at, long key) => memo.TryGetValue(key, out object? v) ? v : throw Fail(at, $"memo key {key} was never stored");

    object? Peek(int at) => stack.Count > (marks.Count > 0 ? marks.Peek() : 0) ? stack[^1] : throw Fail(at, "stack is empty");

    T Top<T>(int at, string what) => Peek(at) is T t ? t : throw Fail(at, $"{what} on a {TypeName(stack[^1])}");

    T Pop<T>(int at, string what, bool allowNull = false)
    {
        if (stack.Count <= (marks.Count > 0 ? marks.Peek() : 0)) throw Fail(at, $"{what}: stack is empty");
        object? v = stack[^1];
        stack.RemoveAt(stack.Count - 1);
        if (v is T t) return t;
        if (v is null && allowNull) return default!;
        throw Fail(at, $"{what} is a {TypeName(v)}");
    }

    object?[] PopN(int at, int n)
    {
        if (stack.Count - n < (marks.Count > 0 ? marks.Peek() : 0)) throw Fail(at, $"a {n}-tuple needs {n} values on the stack");
        object?[] items = stack.GetRange(stack.Count - n, n).ToArray();
        stack.RemoveRange(stack.Count - n, n);
        return items;
    }

    object?[] PopToMark(int at)
    {
        if (marks.Count == 0) throw Fail(at, "no MARK to pop to");
        int mark = marks.Pop();
        object?[] items = stack.GetRange(mark, stack.Count - mark).ToArray();
        stack.RemoveRange(mark, stack.Count - mark);
        return items;
    }

    public static string TypeName(object? v) => v switch
    {
        null => "None",
        long => "int",
        double => "float",
        string => "str",
        bool => "bool",
        object?[] => "tuple",
        List<object?> => "list",
        PickleDict => "dict",
        PickleGlobal g => g.ToString(),
        _ => v.GetType().Name,
    };

    static class Op
    {
        public const byte Mark = (byte)'(', Stop = (byte)'.', BinInt = (byte)'J', BinInt1 = (byte)'K', BinInt2 = (byte)'M',
            None = (byte)'N', BinPersId = (byte)'Q', Reduce = (byte)'R', BinString = (byte)'T', ShortBinString = (byte)'U',
            BinUnicode = (byte)'X', Append = (byte)'a', Build = (byte)'b', Global = (byte)'c', Appends = (byte)'e',
            BinGet = (byte)'h', LongBinGet = (byte)'j', EmptyList = (byte)']', BinPut = (byte)'q', LongBinPut = (byte)'r',
            SetItem = (byte)'s', Tuple = (byte)'t', EmptyTuple = (byte)')', SetItems = (byte)'u', BinFloat = (byte)'G',
            EmptyDict = (byte)'}', Proto = 0x80, Tuple1 = 0x85, Tuple2 = 0x86, Tuple3 = 0x87, NewTrue = 0x88, NewFalse = 0x89,
            Long1 = 0x8a, ShortBinUnicode = 0x8c, StackGlobal = 0x93, Memoize = 0x94, Frame = 0x95;
    }

    // Every opcode of pickle protocols 0-5 (Lib/pickletools.py), so an unsupported one is reported by name.
    static readonly Dictionary<byte, string> OpNames = new()
    {
        [(byte)'('] = "MARK", [(byte)'.'] = "STOP", [(byte)'0'] = "POP", [(byte)'1'] = "POP_MARK", [(byte)'2'] = "DUP",
        [(byte)'F'] = "FLOAT", [(byte)'I'] = "INT", [(byte)'J'] = "BININT", [(byte)'K'] = "BININT1", [(byte)'L'] = "LONG",
        [(byte)'M'] = "BININT2", [(byte)'N'] = "NONE", [(byte)'P'] = "PERSID", [(byte)'Q'] = "BINPERSID", [(byte)'R'] = "REDUCE",
        [(byte)'S'] = "STRING", [(byte)'T'] = "BINSTRING", [(byte)'U'] = "SHORT_BINSTRING", [(byte)'V'] = "UNICODE",
        [(byte)'X'] = "BINUNICODE", [(byte)'a'] = "APPEND", [(byte)'b'] = "BUILD", [(byte)'c'] = "GLOBAL", [(byte)'d'] = "DICT",
        [(byte)'}'] = "EMPTY_DICT", [(byte)'e'] = "APPENDS", [(byte)'g'] = "GET", [(byte)'h'] = "BINGET", [(byte)'i'] = "INST",
        [(byte)'j'] = "LONG_BINGET", [(byte)'l'] = "LIST", [(byte)']'] = "EMPTY_LIST", [(byte)'o'] = "OBJ", [(byte)'p'] = "PUT",
        [(byte)'q'] = "BINPUT", [(byte)'r'] = "LONG_BINPUT", [(byte)'s'] = "SETITEM", [(byte)'t'] = "TUPLE", [(byte)')'] = "EMPTY_TUPLE",
        [(byte)'u'] = "SETITEMS", [(byte)'G'] = "BINFLOAT", [0x80] = "PROTO", [0x81] = "NEWOBJ", [0x82] = "EXT1", [0x83] = "EXT2",
        [0x84] = "EXT4", [0x85] = "TUPLE1", [0x86] = "TUPLE2", [0x87] = "TUPLE3", [0x88] = "NEWTRUE", [0x89] = "NEWFALSE",
        [0x8a] = "LONG1", [0x8b] = "LONG4", [(byte)'B'] = "BINBYTES", [(byte)'C'] = "SHORT_BINBYTES", [0x8c] = "SHORT_BINUNICODE",
        [0x8d] = "BINUNICODE8", [0x8e] = "BINBYTES8", [0x8f] = "EMPTY_SET", [0x90] = "ADDITEMS", [0x91] = "FROZENSET",
        [0x92] = "NEWOBJ_EX", [0x93] = "STACK_GLOBAL", [0x94] = "MEMOIZE", [0x95] = "FRAME", [0x96] = "BYTEARRAY8",
        [0x97] = "NEXT_BUFFER", [0x98] = "READONLY_BUFFER",
    };

    static string OpName(byte op) => OpNames.TryGetValue(op, out string? n) ? $"{n} (0x{op:x2})" : $"0x{op:x2}, which is not a pickle opcode";
}
