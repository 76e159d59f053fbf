namespace SteerEngine.Tokenization;

/// <summary>
/// GPT-2's byte-to-character table used by every byte-level BPE vocabulary: each of the 256 byte
/// values is written as one printable character (printable Latin-1 bytes stand for themselves, the
/// rest are shifted to U+0100 and up, so a space becomes 'Ġ' and a newline 'Ċ').
/// </summary>
internal static class ByteLevelAlphabet
{
    public static readonly char[] ByteToChar = BuildByteToChar();

    /// <summary>Indexed by character; -1 for characters that stand for no byte.</summary>
    public static readonly short[] CharToByte = BuildCharToByte();

    static char[] BuildByteToChar()
    {
        var table = new char[256];
        int shifted = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            table[b] = printable ? (char)b : (char)(256 + shifted++);
        }
        return table;
    }

    static short[] BuildCharToByte()
    {
        var table = new short[512];
        Array.Fill(table, (short)-1);
        for (int b = 0; b < 256; b++)
            table[ByteToChar[b]] = (short)b;
        return table;
    }

    /// <summary>The bytes a vocabulary entry stands for; null if it holds a character outside the table.</summary>
    public static byte[]? Decode(string token)
    {
        var bytes = new byte[token.Length];
        for (int i = 0; i < token.Length; i++)
        {
            char c = token[i];
            if (c >= CharToByte.Length || CharToByte[c] < 0)
                return null;
            bytes[i] = (byte)CharToByte[c];
        }
        return bytes;
    }
}
